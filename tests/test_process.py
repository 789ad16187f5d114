"""models.process.stop_process: how a child process is ended (llama.cpp server, supervisor)."""

import signal
import subprocess
import sys
import time


def _child(code: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", code + "\nprint('up', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "up"  # its signal handler is set before we signal
    return proc


def test_a_child_that_obeys_sigterm_ends_with_it_within_the_grace():
    from models.process import stop_process

    proc = _child("import time")
    started = time.monotonic()
    assert stop_process(proc, grace_s=10) == -signal.SIGTERM
    assert time.monotonic() - started < 5
    assert proc.poll() is not None


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace():
    from models.process import stop_process

    proc = _child("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)")
    started = time.monotonic()
    assert stop_process(proc, grace_s=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 10
    assert proc.poll() == -signal.SIGKILL  # reaped, not a zombie


def test_a_child_that_already_exited_is_only_reaped():
    from models.process import stop_process

    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    assert stop_process(proc) == 3
