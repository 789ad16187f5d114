"""#17 critical (the ledger part) and low: the ledger keeps every answered request exactly
once while outside readers come and go, and no writer can replace a row.

The original loss: reading ledger.sqlite through the file route made Gradio
open and close it inside the server, which dropped SQLite's POSIX locks;
an outside reader then took itself for the last user, deleted the -wal and
-shm files, and 13 answered requests were gone. The route is closed
(test_file_read); this replays the rest of the scene.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
import subprocess
import sys

import httpx
import pytest

from assistant.settings import Settings
from tests.security.served import serve

READER = """
import sqlite3, sys, time
end = time.time() + float(sys.argv[2])
while time.time() < end:
    con = sqlite3.connect(sys.argv[1], timeout=5)
    con.execute("SELECT COUNT(*) FROM events").fetchone()
    con.close()
"""


def test_answered_requests_stay_exactly_once_under_outside_readers(tmp_path):
    with serve(Settings(home=tmp_path / "home")) as served:
        ledger = str(served.settings.ledger_path)
        assert httpx.get(f"{served.url}/gradio_api/file={ledger}").status_code == 404
        readers = [subprocess.Popen([sys.executable, "-c", READER, ledger, "8"]) for _ in range(2)]
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}

        def ask(i):
            got = httpx.post(
                f"{served.url}/v1/chat/completions", json={**body, "user": f"u{i}"}, timeout=60
            )
            return got.json()["id"].removeprefix("chatcmpl-") if got.status_code == 200 else None

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answered = [r for r in pool.map(ask, range(24)) if r]
        for reader in readers:
            reader.wait(30)
    assert len(answered) == 24
    con = sqlite3.connect(ledger)
    rows = con.execute("SELECT request_id, phase, COUNT(*) FROM events GROUP BY 1, 2").fetchall()
    finished = {r[0]: r[2] for r in rows if r[1] == "finished"}
    assert all(finished.get(a) == 1 for a in answered), finished


def test_no_outside_writer_replaces_a_row(tmp_path):
    with serve(Settings(home=tmp_path / "home")) as served:
        body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(f"{served.url}/v1/chat/completions", json=body).status_code == 200
    con = sqlite3.connect(served.settings.ledger_path)
    seq, request_id = con.execute("SELECT seq, request_id FROM events LIMIT 1").fetchone()
    before = con.execute("SELECT * FROM events ORDER BY seq").fetchall()
    for sql, args in (
        (
            "INSERT OR REPLACE INTO events (seq, request_id, phase, ts)"
            " VALUES (?, 'x', 'started', 0)",
            (seq,),
        ),
        (
            "INSERT OR REPLACE INTO events (request_id, phase, ts) VALUES (?, 'started', 0)",
            (request_id,),
        ),
        ("REPLACE INTO events (request_id, phase, ts) VALUES (?, 'started', 0)", (request_id,)),
        ("UPDATE events SET status = 'ok'", ()),
        ("DELETE FROM events", ()),
    ):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql, args)
    assert con.execute("SELECT * FROM events ORDER BY seq").fetchall() == before
