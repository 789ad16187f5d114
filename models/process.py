"""Ending a child process: ask it to stop, wait a grace period, then kill it.

Shared by the llama.cpp server's two stoppers (the app stopping its
``models.llama_server`` child, and that supervisor stopping the native
``llama-server`` binary), so both end a process the same way.
"""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> int:
    """SIGTERM ``proc``, wait up to ``grace_s`` for it, then SIGKILL; its exit code.

    Never leaves it running or unreaped (a zombie): the kill is waited for too.
    A process that already exited is only reaped.
    """
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()
