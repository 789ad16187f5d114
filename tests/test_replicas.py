"""A replica that dies mid-request: its open requests are closed as failed by another.

Two Ledgers opened on one database stand for two replicas (their own
connections, their own ids). ``open_db`` runs each test on SQLite (where a
replica is alive while it holds its lock file) and PostgreSQL (while its
heartbeat is fresh). The start-up case runs a real process and SIGKILLs it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.accounting.ledger import Finished, Ledger, Started, open_ledger
from assistant.accounting.replicas import REPLICA_STOPPED, Heartbeat, replica_id
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 0.6  # short, so that a replica that stopped beating is gone within a test


def _started(request_id: str) -> Started:
    return Started(request_id, "s", "api", "text", "m", "plain question", 0.9)


def _replica(db, name: str) -> tuple[Ledger, Heartbeat]:
    ledger = Ledger(db, replica=replica_id(name))
    heartbeat = Heartbeat(ledger, TIMEOUT_S, log=lambda m: None)
    heartbeat.start()
    return ledger, heartbeat


def test_a_live_replicas_requests_stay_open_and_a_gone_ones_are_closed(open_db):
    a, a_beat = _replica(open_db(), "a")
    a.start(_started("on-a"))
    b, b_beat = _replica(open_db(), "b")  # starts up: sweeps, and A is alive
    time.sleep(TIMEOUT_S * 1.5)  # both keep beating (and B sweeping) meanwhile
    assert b_beat.sweep() == []
    assert b.get("on-a")["status"] == "started"

    a_beat.stop()  # as a killed process: no more beats, its lock released
    time.sleep(TIMEOUT_S * 1.5)  # B's own beats sweep: nobody has to ask
    row = b.get("on-a")
    assert row["status"] == "error" and row["error"].startswith(REPLICA_STOPPED)
    assert a.replica in row["error"] and row["replica"] == a.replica
    assert row["device"] is None and b.replica in row["extra"]  # closed by B, ran nowhere known
    # Once: A's heartbeat row is gone, and a second sweep finds nothing.
    assert b_beat.sweep() == []
    assert b.db.all("SELECT id FROM replicas") == [(b.replica,)]
    b_beat.stop()


def test_a_replica_taken_for_dead_that_finishes_late_keeps_the_closing_row(open_db):
    a, a_beat = _replica(open_db(), "a")
    a.start(_started("slow"))
    a_beat.stop()
    time.sleep(TIMEOUT_S * 1.5)
    b, b_beat = _replica(open_db(), "b")
    assert b.get("slow")["status"] == "error"
    a.finish(Finished("slow", "ok", units_out=5))  # A was only paused: no error for it
    events = a.db.all("SELECT phase, status FROM events WHERE request_id = 'slow' ORDER BY seq")
    assert events == [("started", None), ("finished", "error")]
    # Any other second finish is still refused.
    a.start(_started("done"))
    a.finish(Finished("done", "ok"))
    with pytest.raises(a.db.IntegrityError):
        a.finish(Finished("done", "error", "again"))
    b_beat.stop()


def test_an_earlier_run_killed_mid_request_is_closed_when_the_next_starts(tmp_path):
    """SQLite, one machine: no timeout to wait for, the dead process's lock is free."""
    home = tmp_path / "home"
    script = (
        "import sys, time\n"
        "from assistant.accounting.ledger import Started, open_ledger\n"
        "from assistant.settings import Settings\n"
        "ledger = open_ledger(Settings(home=__import__('pathlib').Path(sys.argv[1])), print)\n"
        "ledger.start(Started('in-flight', 's', 'api', 'text', 'm', 'r', 1.0))\n"
        "print('STARTED', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(home)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "STARTED"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    said: list[str] = []
    settings = Settings(home=home)  # the default 60 s timeout: the lock decides, not time
    ledger = open_ledger(settings, warn=said.append, log=said.append)
    row = ledger.get("in-flight")
    assert row["status"] == "error" and row["error"].startswith(REPLICA_STOPPED)
    assert said == [
        "Ledger: 1 request(s) left open by a replica that stopped were recorded as failed "
        "(replica stopped)."
    ]
    ledger.heartbeat.stop()


def test_the_replica_id_names_the_host_or_the_given_name_and_is_new_each_start():
    first, second = replica_id("pod-3"), replica_id("pod-3")
    assert first.startswith(f"pod-3:{os.getpid()}:") and first != second
    assert replica_id().split(":")[0] == os.uname().nodename
    settings = Settings.from_env({"ASSISTANT_REPLICA_ID": "a", "ASSISTANT_REPLICA_TIMEOUT_S": "5"})
    assert (settings.replica_name, settings.replica_timeout_s) == ("a", 5.0)
