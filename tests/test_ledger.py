"""The ledger: two rows a request, append-only, migrations, a clear refusal of non-SQLite.

Each test that takes ``ledger`` or ``open_db`` runs on SQLite and on PostgreSQL
(tests/conftest.py): the same migrations and the same rules on both.
"""

from __future__ import annotations

import pytest

from assistant.accounting.ledger import MIGRATIONS, Finished, Ledger, Started
from models.base import BadInput


@pytest.fixture
def ledger(open_db) -> Ledger:
    return Ledger(open_db())


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
    db = ledger.db
    with pytest.raises(db.IntegrityError, match="append-only"):
        db.execute("UPDATE events SET model = 'other'")
    with pytest.raises(db.IntegrityError, match="append-only"):
        db.execute("DELETE FROM events")
    assert ledger.get("r1")["model"] == "m"


# Each engine's other ways of rewriting a row, besides UPDATE and DELETE.
AROUND_THE_GUARDS = {
    "sqlite": [
        "INSERT OR REPLACE INTO events (seq, request_id, phase, ts) VALUES (1, 'x', 'started', 0)",
        "INSERT OR REPLACE INTO events (request_id, phase, ts) VALUES ('r1', 'started', 0)",
        "REPLACE INTO events (request_id, phase, ts) VALUES ('r1', 'started', 0)",
    ],
    "postgres": [
        "TRUNCATE events",
        "INSERT INTO events (request_id, phase, ts) VALUES ('r1', 'started', 0)"
        " ON CONFLICT (request_id, phase) DO UPDATE SET model = 'other'",
        "INSERT INTO events (seq, request_id, phase, ts) VALUES (1, 'x', 'started', 0)",
    ],
}


def test_no_statement_gets_around_the_guards(ledger):
    ledger.start(started("r1"))
    ledger.finish(Finished("r1", "ok", units_in=3))
    before = ledger.db.all("SELECT * FROM events ORDER BY seq")
    kind = "postgres" if ledger.db.shared else "sqlite"
    for sql in AROUND_THE_GUARDS[kind]:
        # PostgreSQL refuses a chosen row number before any trigger runs.
        with pytest.raises(Exception, match="append-only|GENERATED ALWAYS"):
            ledger.db.execute(sql)
    assert ledger.db.all("SELECT * FROM events ORDER BY seq") == before


def test_a_request_finishes_once(ledger):
    ledger.start(started("r1"))
    ledger.finish(Finished("r1", "ok"))
    with pytest.raises(ledger.db.IntegrityError):
        ledger.finish(Finished("r1", "error", "again"))


def test_reopening_does_not_rerun_migrations(open_db):
    Ledger(open_db()).start(started("r1"))
    again = Ledger(open_db())
    versions = [r[0] for r in again.db.all("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert again.get("r1") is not None


def test_every_column_reads_back_as_written(ledger):
    from assistant.accounting.costs import Cost

    row = Started("r1", "s1", "api", "text", "m", "why", 0.5, prompt={"chat": 1}, user="ana")
    ledger.start(row)
    cost = Cost("cpu", 2.5, 30.0, "measured", 0.001, 0.02, "gpt-4o-mini")
    ledger.finish(Finished("r1", "ok", None, 0.1, 0.2, 1.25, 7, 9, "tokens", "cpu", {"k": 1}, cost))
    got = ledger.get("r1")
    assert (got["user"], got["prompt"], got["extra"], got["confidence"]) == (
        "ana",
        '{"chat": 1}',
        '{"k": 1}',
        0.5,
    )
    assert (got["usd_local"], got["usd_cloud"], got["energy_j"]) == (0.001, 0.02, 30.0)
    # A timestamp keeps sub-second precision (PostgreSQL's REAL would not).
    assert got["finished_at"] - got["started_at"] < 1.0 and got["started_at"] % 1 != 0


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


def test_rows_and_spend_filter_by_user(ledger):
    from assistant.accounting.costs import Cost

    for rid, user in [("a", "ana"), ("b", "bob"), ("c", "ana")]:
        ledger.start(Started(rid, "s", "ui", "text", "m", "r", 1.0, user=user))
        ledger.finish(Finished(rid, "ok", cost=Cost("cpu", 1.0, 1.0, "m", 0.25, 0.5, "x")))
    assert [r["request_id"] for r in ledger.rows(user="ana")] == ["c", "a"]
    assert ledger.user_spend("ana", since=0) == 0.5 and ledger.user_spend("eve", since=0) == 0
    assert ledger.typical_cost("m", "text") == (0.25, 3)


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
