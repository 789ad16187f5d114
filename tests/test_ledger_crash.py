"""SIGKILL in the middle of requests: the ledger keeps exactly what clients were told."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _trial(home: Path, seed: int) -> tuple[set[str], sqlite3.Connection]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", str(home)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    acked: set[str] = set()
    deadline = time.monotonic() + 30
    target = random.Random(seed).randint(5, 60)  # kill after a random number of answers
    while len(acked) < target and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break  # the worker died by itself: the assertions below will say so
        if line.startswith("ACK "):
            acked.add(line.split()[1])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    acked |= {ln.split()[1] for ln in proc.stdout.read().splitlines() if ln.startswith("ACK ")}
    return acked, sqlite3.connect(home / "ledger.sqlite")


def test_every_acknowledged_request_has_exactly_one_completed_row(tmp_path):
    home = tmp_path / "home"
    all_acked: set[str] = set()
    for trial in range(12):  # the same ledger survives every kill, and grows
        acked, db = _trial(home, trial)
        assert acked, "the worker answered nothing before the kill"
        all_acked |= acked
        finished = dict(
            db.execute(
                "SELECT request_id, COUNT(*) FROM events WHERE phase='finished' GROUP BY request_id"
            ).fetchall()
        )
        started = dict(
            db.execute(
                "SELECT request_id, COUNT(*) FROM events WHERE phase='started' GROUP BY request_id"
            ).fetchall()
        )
        # Every acknowledged request finished exactly once ...
        assert all(finished.get(rid) == 1 for rid in all_acked)
        # ... no request has two rows of a phase, nothing finished without starting ...
        assert set(started.values()) == {1} and set(finished.values()) == {1}
        assert set(finished) <= set(started)
        # ... and at most the one request in flight at the kill is left unfinished
        # or finished-but-unacknowledged.
        assert len(set(started) - set(finished)) <= trial + 1
        assert len(set(finished) - all_acked) <= trial + 1
        totals = db.execute(
            "SELECT COUNT(*), SUM(units_in), SUM(units_out) FROM requests WHERE status='ok'"
        ).fetchone()
        assert totals == (len(finished), 3 * len(finished), len(finished))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
