"""Text generation on llama.cpp: the fastest single chat on a CPU, as an option.

Why it is here, and why it is not the default (measured on a 2-core AMD
EPYC with AVX2 by ``python -m assistant bench text``; the README has the
figures):

- It runs the pack's GGUF as shipped (Q4_1: 98 MB read per token, against
  135 MB for the CTranslate2 int8 conversion), with both cores on the one
  chat: a single chat decodes 2.7-2.9x faster than on CTranslate2, and
  the 0.5B coder 3.5x (it reaches 0.63 of the memory bandwidth).
- It keeps the KV cache of the chat it served last, so the next turn
  reads only the new message (0.15 s to the first token against 1.0 s).
  A new long prompt is read 2x slower, though (no fast Q4_1 matrix-matrix
  path on AVX2).
- llama-cpp-python's ``Llama`` holds one sequence, so chats run one at a
  time (the pool queues the others and shows the wait). CTranslate2 batches
  concurrent chats, which is why it stays the default for a shared server.
- PyPI has only its source: pip compiles it (about 10 minutes on 2 cores),
  so it is ``make llamacpp``, never part of ``make install``.
- On a GPU build of llama-cpp-python (``CMAKE_ARGS="-DGGML_CUDA=on"``) every
  layer is offloaded; on a CPU build the device is the CPU whatever is asked.

The prompt is rendered and trimmed by the same transformers tokenizer as
the other text backends (``chat_prompt``), so chat templates, system
prompts and context trimming behave the same; llama.cpp gets token ids.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from models.base import Adapter, ModelUnavailable, Request, Result, Usage
from models.text import chat_prompt, stream_decoded, trimmed_note

INSTALL_HINT = "make llamacpp (compiles llama-cpp-python from PyPI, about 10 minutes)"


class LlamaCppChat(Adapter):
    """A GGUF chat model on llama.cpp, one chat at a time."""

    family = "text"
    tasks = ("text",)
    concurrent_safe = False  # one KV cache: the pool runs one chat at a time

    def __init__(
        self,
        files: Callable[[], tuple[Path, Path]],
        device: str = "auto",
        context_window: int = 2048,
        repetition_penalty: float = 1.1,
        llm: Any = None,
        tokenizer: Any = None,
    ):
        # files() -> (transformers tokenizer folder, GGUF file); called in
        # load(), because preparing a pack is part of a cold load.
        self.files = files
        self.device_preference = device
        self.context_window = context_window
        # Same value as the other text adapters, for the same reason (loops).
        self.repetition_penalty = repetition_penalty
        self.llm = llm
        self.tokenizer = tokenizer

    def load(self) -> None:
        if self.llm is not None:
            return
        try:
            import llama_cpp
        except ImportError as err:
            raise ModelUnavailable(
                f"The llama.cpp backend needs llama-cpp-python, which is not installed: "
                f"{INSTALL_HINT}."
            ) from err
        from transformers import AutoTokenizer

        folder, gguf = self.files()
        if not Path(gguf).is_file():
            raise ModelUnavailable(f"No GGUF file at '{gguf}' for the llama.cpp backend.")
        gpu = self.device_preference in ("auto", "cuda") and llama_cpp.llama_supports_gpu_offload()
        cores = os.cpu_count() or 1
        self.llm = llama_cpp.Llama(
            model_path=str(gguf),
            n_ctx=self.context_window,
            # llama-cpp-python's default is half the cores: one of two here,
            # measured ~40 tok/s against ~57 with both.
            n_threads=cores,
            n_threads_batch=cores,
            n_gpu_layers=-1 if gpu else 0,
            verbose=False,
        )
        self.device = "cuda" if gpu else "cpu"
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))

    def unload(self) -> None:
        if self.llm is not None and hasattr(self.llm, "close"):
            self.llm.close()  # frees the weights and KV cache now, not at GC
        self.llm = None
        self.tokenizer = None

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        if self.llm is None:
            raise ModelUnavailable("The text model is not loaded (it was unloaded); try again.")
        ids, trimmed = chat_prompt(self.tokenizer, request, self.context_window)
        cancel = cancel or threading.Event()
        stops = {self.llm.token_eos(), self.tokenizer.eos_token_id}
        greedy = request.temperature <= 0

        def token_ids() -> Iterator[int]:
            # Plain temperature sampling, as on the other backends: no top-k,
            # top-p or min-p cut. temp 0 is llama.cpp's greedy sampler.
            # generate() reuses the KV cache of a shared prefix (the earlier
            # turns of the same chat), so a follow-up starts sooner.
            tokens = self.llm.generate(
                ids, temp=0.0 if greedy else request.temperature, top_k=0, top_p=1.0,
                min_p=0.0, repeat_penalty=self.repetition_penalty,
            )  # fmt: skip
            for n, token in enumerate(tokens, start=1):
                if token in stops or cancel.is_set():
                    return
                yield token
                if n >= request.max_new_tokens:
                    return

        text, n_out = yield from stream_decoded(token_ids(), self.tokenizer)
        yield Result(text=text, usage=Usage(len(ids), n_out, "tokens"), notes=trimmed_note(trimmed))
