"""Text generation on CTranslate2: the fast path for chat on a CPU, with batching.

Why CTranslate2 and these settings (measured by ``python -m assistant bench
text`` on a 2-core EPYC; the README has the figures):

- int8 weights read 4x fewer bytes than fp32 per token, and CTranslate2's
  decoder loop is C++, so a 135M model is no longer bound by Python
  overhead the way transformers' ``generate`` is.
- ``intra_threads=1`` per batch: a 576-wide layer is too small to split
  across cores, and with 2 threads each token paid for the synchronisation
  (29 tok/s vs 75 tok/s with one, on an Intel AVX-512 machine where
  CTranslate2 uses MKL). The cores are used by running batches side by
  side instead (``inter_threads``), which is also how concurrent chats get
  their throughput. On an AMD AVX2 machine (oneDNN) the trade-off differs:
  one worker of 2 threads decoded one chat at 28 tok/s vs 20, but eight
  chats at 73 vs 78 tok/s, so 2.6x one chat instead of 3.9x (2026-12-01).
  Two workers are kept, for a shared server; a single user who wants the
  fastest one chat has the llama.cpp backend (``text_llamacpp.py``).
- Concurrent chats are batched: requests that arrive while others wait are
  decoded together, one matrix-matrix product per layer instead of several
  matrix-vector ones. Static batches (CTranslate2 has no continuous
  batching); each request stops on its own through the step callback.
- On a GPU: ``int8_float16`` (int8 weights, fp16 activations) and one
  thread; the batching is where a GPU's throughput comes from.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.base import (
    Adapter,
    ModelUnavailable,
    Request,
    Result,
    Usage,
    keeping_torch_threads,
    require,
)
from models.text import chat_prompt, stream_decoded, trimmed_note

CT2_DIR = "ct2-int8"  # inside a transformers weights folder


def ensure_ct2(folder: Path, progress: Callable[[str], None] = print) -> Path:
    """Convert a transformers folder to CTranslate2 int8 once; return the converted folder.

    Converted into a temporary folder and renamed, so an interrupted
    conversion never leaves a half-written model that looks ready.
    """
    out = folder / CT2_DIR
    if (out / "model.bin").is_file():
        return out
    import ctranslate2

    progress(f"  converting {folder.name} to CTranslate2 int8 (once)...")
    work = folder / f".{CT2_DIR}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        ctranslate2.converters.TransformersConverter(str(folder)).convert(
            str(work), quantization="int8", force=True
        )
        work.rename(out)
    except OSError as err:
        if not (out / "model.bin").is_file():  # another process may have won the rename
            raise ModelUnavailable(f"Could not convert {folder} for CTranslate2: {err}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


@dataclass(eq=False)  # compared by identity: two equal prompts are two requests
class _Job:
    """One request waiting for, or inside, a batch."""

    tokens: list[str]  # the prompt as vocabulary tokens
    max_new: int
    sampling: tuple[float, float]  # (temperature, repetition penalty): batched only with equals
    cancel: threading.Event
    out: queue.Queue = field(default_factory=queue.Queue)  # token ids, then a _Done
    submitted: float = field(default_factory=time.perf_counter)
    started: float = 0.0
    batch_size: int = 1


@dataclass
class _Done:
    error: BaseException | None = None


# Most padding one request of a batch may carry. A static batch reads every
# prompt padded to the longest, so a short chat batched with a long history
# waited for all of it (#17: a UI call behind a 400-turn request never
# finished): a long prompt is read in its own batch, on its own worker.
PAD_TOKENS = 256
# A burst of requests is gathered while they arrive this close together (see
# Batcher._gather). Eight threads released at once reached the batcher over
# up to 12 ms, 4 ms apart at most, on 2 busy cores.
GATHER_GAP_S, GATHER_MAX_S = 0.01, 0.05


def _batchable(first: _Job, job: _Job) -> bool:
    return job.sampling == first.sampling and abs(len(job.tokens) - len(first.tokens)) <= PAD_TOKENS


class Batcher:
    """Groups waiting requests into batches and runs up to ``workers`` batches at once.

    A free worker takes the waiting jobs that share its first job's
    sampling settings and about its prompt's length, split evenly with the
    other free workers, so eight chats arriving together become two batches
    of four on two cores rather than one batch of eight and an idle core.
    """

    def __init__(self, run_batch: Callable[[list[_Job]], None], max_batch: int, workers: int):
        self.run_batch = run_batch
        self.max_batch = max_batch
        self._pending: deque[_Job] = deque()
        self._cv = threading.Condition()
        self._busy = 0  # workers running a batch
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"batch-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: _Job) -> None:
        with self._cv:
            if self._closed:
                raise ModelUnavailable("The text model was unloaded; send the message again.")
            self._pending.append(job)
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
            for job in self._pending:
                job.out.put(_Done(ModelUnavailable("The text model was unloaded; try again.")))
            self._pending.clear()

    def _take(self) -> list[_Job] | None:
        with self._cv:
            while True:
                while not self._pending and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return None
                self._gather()
                if self._closed:
                    return None
                if self._pending:  # another worker may have taken them meanwhile
                    break
            first = self._pending[0]
            alike = [j for j in self._pending if _batchable(first, j)]
            free = len(self._threads) - self._busy  # this worker included
            share = -(-len(alike) // free)  # ceil: leave work for the other free workers
            batch = alike[: min(self.max_batch, share)]
            for job in batch:
                self._pending.remove(job)
            self._busy += 1
            return batch

    def _gather(self) -> None:
        """Let requests that arrive together (a burst of users) join the batch.

        Waits while they keep coming, GATHER_GAP_S apart at most, for
        GATHER_MAX_S in all. A batch is static: a request that misses it
        waits for the whole of its replies (`bench text`, 8 chats at once:
        a fixed 5 ms window split a burst that arrived over 3-12 ms, and
        the last chat waited 3.5 s for its first token). Called holding
        the lock; a lone request pays one gap.
        """
        deadline = time.perf_counter() + GATHER_MAX_S
        seen = -1
        while len(self._pending) != seen and not self._closed:
            seen = len(self._pending)
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._cv.wait(timeout=min(GATHER_GAP_S, left))

    def _work(self) -> None:
        while (batch := self._take()) is not None:
            now = time.perf_counter()
            for job in batch:
                job.started, job.batch_size = now, len(batch)
            try:
                self.run_batch(batch)
                error = None
            except BaseException as err:  # handed to every waiting request
                error = err
            with self._cv:
                self._busy -= 1
            for job in batch:
                job.out.put(_Done(error))


class CT2Chat(Adapter):
    """A chat model converted to CTranslate2 int8, batching concurrent requests."""

    family = "text"
    tasks = ("text",)
    concurrent_safe = True  # the batcher serialises access to the generator

    def __init__(
        self,
        source: str | Path,
        device: str = "auto",
        context_window: int = 2048,
        prepare: Callable[[], Path] | None = None,
        max_batch: int = 8,
        repetition_penalty: float = 1.1,
        generator: Any = None,
        tokenizer: Any = None,
        workers: int | None = None,
    ):
        self.source = source  # a transformers folder (converted here once)
        self.prepare = prepare  # makes the folder first (e.g. a pack to join)
        self.device_preference = device
        self.context_window = context_window
        self.max_batch = max_batch
        # Same value as the transformers adapter, for the same reason (loops).
        self.repetition_penalty = repetition_penalty
        self.generator = generator
        self.tokenizer = tokenizer
        self.workers = workers
        self.batcher: Batcher | None = None
        if generator is not None:
            self._start()

    def load(self) -> None:
        if self.generator is not None:
            return
        require("ctranslate2", install="pip install -r requirements.txt (faster-whisper brings it)")
        require("transformers")
        import ctranslate2
        from transformers import AutoTokenizer

        folder = Path(self.prepare() if self.prepare else self.source)
        if not (folder / "config.json").is_file():
            raise ModelUnavailable(
                f"No transformers model in '{folder}': the CTranslate2 backend converts a "
                "local folder (a prepared pack or a downloaded model)."
            )
        ct2 = ensure_ct2(folder)
        cuda = self.device_preference in ("auto", "cuda") and ctranslate2.get_cuda_device_count()
        self.device = "cuda" if cuda else "cpu"
        cores = os.cpu_count() or 1
        # Measured on 2 cores only: two single-threaded batch workers. With
        # more cores, up to four workers share them (untested beyond 2).
        self.workers = self.workers or (1 if cuda else min(4, cores))
        with keeping_torch_threads():
            self.generator = ctranslate2.Generator(
                str(ct2),
                device=self.device,
                compute_type="int8_float16" if cuda else "int8",
                inter_threads=self.workers,
                # Layers this small do not split well across cores (see the top).
                intra_threads=1 if cuda else max(1, cores // self.workers),
            )
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self._start()

    def _start(self) -> None:
        self.batcher = Batcher(self._run_batch, self.max_batch, self.workers or 1)

    def unload(self) -> None:
        if self.batcher is not None:
            self.batcher.close()
        self.batcher = None
        self.generator = None
        self.tokenizer = None

    def _run_batch(self, jobs: list[_Job]) -> None:
        counts = [0] * len(jobs)

        def on_token(step) -> bool:
            job = jobs[step.batch_id]
            counts[step.batch_id] += 1
            job.out.put(step.token_id)
            # True stops this request only; the rest of the batch goes on.
            return job.cancel.is_set() or counts[step.batch_id] >= job.max_new

        temperature, penalty = jobs[0].sampling
        self.generator.generate_batch(
            [job.tokens for job in jobs],
            max_length=max(job.max_new for job in jobs),
            sampling_topk=1 if temperature <= 0 else 0,
            sampling_temperature=max(temperature, 1e-5),
            repetition_penalty=penalty,
            include_prompt_in_result=False,
            callback=on_token,
        )

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        if self.batcher is None:
            raise ModelUnavailable("The text model is not loaded (it was unloaded); try again.")
        ids, trimmed = chat_prompt(self.tokenizer, request, self.context_window)
        job = _Job(
            tokens=self.tokenizer.convert_ids_to_tokens(ids),
            max_new=request.max_new_tokens,
            sampling=(request.temperature, self.repetition_penalty),
            cancel=cancel or threading.Event(),
        )
        self.batcher.submit(job)
        done: list[_Done] = []

        def token_ids() -> Iterator[int]:
            while not isinstance(item := job.out.get(), _Done):
                yield item
            done.append(item)

        text, n_out = yield from stream_decoded(token_ids(), self.tokenizer)
        if done[0].error is not None:
            raise done[0].error
        yield Result(
            text=text,
            usage=Usage(len(ids), n_out, "tokens"),
            notes=trimmed_note(trimmed),
            queue_s=max(0.0, job.started - job.submitted),
            batch_size=job.batch_size,
        )
