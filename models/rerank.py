"""Reranking retrieved passages with a cross-encoder (sentence-transformers ``CrossEncoder``).

Hybrid retrieval (BM25 + vectors) is fast because query and passage are
embedded apart; a cross-encoder reads them together, so it judges better
but costs one forward pass per pair. So it only reorders the few dozen
candidates retrieval found, and the best few go to the text model.

No cross-encoder ships on PyPI, so reranking is off by default and needs a
hub model (``cross-encoder/ms-marco-MiniLM-L6-v2``, 23M parameters: ~20
passages in well under a second on a CPU) or a local folder; the tests use
a tiny untrained one saved to a folder.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.base import Adapter, BadInput, hub_cached, pick_device, require, require_download


class CrossEncoderReranker(Adapter):
    family = "rerank"
    tasks = ("rerank",)

    def __init__(self, source: str, device: str = "auto", max_length: int = 512):
        self.source = source  # hub id or a local folder
        self.device_preference = device
        self.max_length = max_length  # query + passage word pieces; longer passages are cut
        self.model = None

    def load(self) -> None:
        require("sentence_transformers", "sentence-transformers")
        from sentence_transformers import CrossEncoder

        self.device = pick_device(self.device_preference)
        require_download(self.source, "huggingface.co", hub_cached(self.source, "config.json"))
        self.model = CrossEncoder(self.source, device=self.device, max_length=self.max_length)

    def unload(self) -> None:
        self.model = None

    def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage (higher is more relevant), in the given order."""
        if not query.strip():
            raise BadInput("There is no question to rank the passages for.")
        if not passages:
            return []
        got = self.model.predict(
            [(query, p) for p in passages], batch_size=32, show_progress_bar=False
        )
        return [float(s) for s in got]
