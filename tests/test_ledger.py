"""The ledger: two rows a request, append-only, migrations, a clear refusal of non-SQLite."""

from __future__ import annotations

import sqlite3

import pytest

from assistant.accounting.ledger import MIGRATIONS, Finished, Ledger, Started
from models.base import BadInput


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite")


def started(rid: str, session: str = "s1") -> Started:
    return Started(rid, session, "cli", "text", "m", "plain question", 0.75)


def test_start_and_finish_make_one_request_row(ledger):
    ledger.start(started("r1"))
    ledger.finish(Finished("r1", "ok", None, 0.01, 1.5, 2.0, 30, 12, "tokens", "cpu"))
    row = ledger.get("r1")
    assert row["status"] == "ok" and row["units_in"] == 30 and row["units_out"] == 12
    assert row["load_s"] == 1.5 and row["finished_at"] >= row["started_at"]
    assert len(ledger.rows()) == 1


def test_a_request_that_never_finished_shows_as_started(ledger):
    ledger.start(started("crashed"))
    assert ledger.get("crashed")["status"] == "started"


def test_rows_cannot_be_changed_or_deleted(ledger):
    ledger.start(started("r1"))
    conn = ledger._conn()
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET model = 'other'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events")
    assert ledger.get("r1")["model"] == "m"


def test_a_request_finishes_once(ledger):
    ledger.start(started("r1"))
    ledger.finish(Finished("r1", "ok"))
    with pytest.raises(sqlite3.IntegrityError):
        ledger.finish(Finished("r1", "error", "again"))


def test_reopening_does_not_rerun_migrations(tmp_path):
    Ledger(tmp_path / "l.sqlite").start(started("r1"))
    again = Ledger(tmp_path / "l.sqlite")
    versions = [r[0] for r in again._conn().execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert again.get("r1") is not None


def test_a_file_that_is_not_sqlite_is_refused_clearly_and_kept(tmp_path):
    path = tmp_path / "ledger.sqlite"
    garbage = bytes(range(256)) * 40
    path.write_bytes(garbage)
    with pytest.raises(BadInput, match="cannot be opened as SQLite") as err:
        Ledger(path)
    assert str(path) in str(err.value)
    assert path.read_bytes() == garbage  # nothing was overwritten


def test_rows_filter_by_session_newest_first(ledger):
    for rid, session in [("a", "s1"), ("b", "s2"), ("c", "s1")]:
        ledger.start(started(rid, session))
    assert [r["request_id"] for r in ledger.rows(session_id="s1")] == ["c", "a"]


def test_the_app_starts_over_a_ledger_that_is_not_sqlite_and_keeps_it(settings):
    from assistant.flow.service import Assistant
    from models.base import Request

    settings.ensure_home()
    garbage = b"this was never a database" * 100
    settings.ledger_path.write_bytes(garbage)
    said = []
    assistant = Assistant.from_settings(settings, progress=said.append)
    (kept,) = settings.home.glob("ledger.sqlite.not-sqlite-*")
    assert kept.read_bytes() == garbage
    assert any("was not an SQLite database" in w and kept.name in w for w in assistant.warnings)
    assert said and said[0].startswith("Warning:")
    rejected = assistant.ask(Request(text=""))  # the new ledger records
    assert assistant.ledger.get(rejected.request_id)["status"] == "error"
