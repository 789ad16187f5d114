"""SIGKILL in the middle of requests: the ledger keeps exactly what clients were told."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
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


def test_two_replicas_on_one_ledger_one_killed_mid_request(pg_url, tmp_path):
    """Two worker processes share a PostgreSQL ledger; one is SIGKILLed, the other goes on."""
    env = {**os.environ, "ASSISTANT_DATABASE_URL": pg_url}
    acked: list[set[str]] = [set(), set()]

    def spawn(i: int) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.crash_worker", str(tmp_path / f"home{i}")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

        def read():
            for line in proc.stdout:
                if line.startswith("ACK "):
                    acked[i].add(line.split()[1])

        threading.Thread(target=read, daemon=True).start()
        return proc

    def wait_for(i: int, count: int) -> None:
        deadline = time.monotonic() + 60
        while len(acked[i]) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acked[i]) >= count, f"replica {i} answered {len(acked[i])} of {count}"

    replicas = [spawn(0), spawn(1)]
    wait_for(0, 30)
    wait_for(1, 30)
    os.kill(replicas[0].pid, signal.SIGKILL)  # mid-request, most likely
    replicas[0].wait(10)
    before = len(acked[1])
    wait_for(1, before + 30)  # the survivor goes on writing the same ledger
    os.kill(replicas[1].pid, signal.SIGKILL)
    replicas[1].wait(10)
    time.sleep(0.2)  # the reader threads take the last lines

    import psycopg

    with psycopg.connect(pg_url) as db:
        phases = db.execute(
            "SELECT request_id, phase, COUNT(*) FROM events GROUP BY 1, 2"
        ).fetchall()
    finished = {rid: n for rid, phase, n in phases if phase == "finished"}
    started = {rid: n for rid, phase, n in phases if phase == "started"}
    assert not acked[0] & acked[1]  # request ids never collide across replicas
    assert all(finished.get(rid) == 1 for rid in acked[0] | acked[1])
    assert set(started.values()) == {1} and set(finished.values()) == {1}
    assert set(finished) <= set(started)
    assert len(set(started) - set(finished)) <= 2  # at most the one in flight in each
