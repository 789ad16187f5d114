"""The llama.cpp server process: ``python -m models.llama_server GGUF --port N ...``.

(Or ``python -m models.llama_server --exec LLAMA-SERVER ARGS...``: the native
binary run as this process's child, see ``supervise``.)

Started by ``models/text_llamacpp.py`` (from the pool's load) and spoken to
over HTTP on loopback. It builds xllamacpp's ``Server`` (llama.cpp's own C++
server, with its parallel slots and prompt cache) and then only waits: it
exits when told to (SIGTERM) or when the process that started it is gone,
so a crashed app never leaves a model resident.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from models.process import stop_process


def supervise(command: list[str]) -> int:
    """Run llama.cpp's own ``llama-server`` binary (``llama_native``) under the same rules.

    The binary does not watch for its parent, so this process does it for
    it: the binary ends on SIGTERM or when the app is gone, never left
    resident. Its stderr is this process's, read by the app on a failed start.
    """
    child = subprocess.Popen(command)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    parent = os.getppid()
    while not stop and os.getppid() == parent and child.poll() is None:
        time.sleep(0.5)
    if child.poll() is None:
        stop_process(child, grace_s=10)
        return 0
    if child.returncode < 0:  # SIGILL: a CPU without the instructions it was compiled for
        name = signal.Signals(-child.returncode).name
        print(f"llama-server was killed by {name}", file=sys.stderr, flush=True)
    return 2 if child.returncode else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--exec"]:
        return supervise(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m models.llama_server")
    parser.add_argument("gguf")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads-batch", type=int, default=0)  # 0: as --threads
    parser.add_argument("--gpu-layers", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import xllamacpp
    except ImportError as err:
        print(f"xllamacpp is not installed ({err})", file=sys.stderr, flush=True)
        return 3
    parent = os.getppid()
    params = xllamacpp.CommonParams()
    params.model.path = args.gguf
    params.hostnames = ["127.0.0.1"]  # loopback only: this server has no API key
    params.port = args.port
    params.n_ctx = args.ctx
    # Slots decoded together (continuous batching); one KV cache shared by
    # all of them (kv_unified), so a slot may use the whole context and the
    # memory is n_ctx, not n_ctx x slots.
    params.n_parallel = args.parallel
    params.kv_unified = True
    # n_batch stays llama.cpp's 2048. A short chat beside a long prompt waits
    # for that prompt's reading either way: with 2048 it starts after it, with
    # 128 it gets one token per 128-token chunk. Measured 2026-12-03 (Qwen
    # 0.5B, 1,001 prompt tokens on 2 loaded cores): an 8-token reply beside it
    # took 56 s vs 59 s, and the long prompt read 9% slower. What bounds the
    # wait is the app's prompt budget (assistant/flow/requests.py PROMPT_CHARS).
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads_batch or args.threads
    # No busy-polling between ops: on a machine shared with other work a
    # spinning thread steals the core its partner waits for (measured: two
    # threads fell from ~66 to 4-10 tok/s under load with the default poll).
    params.cpuparams.poll = 0
    params.cpuparams_batch.poll = 0
    params.n_gpu_layers = args.gpu_layers
    params.verbosity = 0
    params.endpoint_slots = False
    try:
        server = xllamacpp.Server(params)
    except Exception as err:  # a bad file, a port taken: said on stderr, read by the parent
        print(f"llama.cpp server failed to start: {err}", file=sys.stderr, flush=True)
        return 2
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print(f"ready {server.listening_address}", flush=True)
    while not stop and os.getppid() == parent:
        time.sleep(0.5)
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
