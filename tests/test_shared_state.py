"""#24 shared state: replicas on one database (ASSISTANT_DATABASE_URL).

Two Ledger or Chats objects opened on one database stand for two replicas:
each has its own connections, as two processes would. The tests taking
``open_db`` run on SQLite and on PostgreSQL; the rest need PostgreSQL's
throwaway cluster (tests/pg.py) or, for an unreachable URL, psycopg only.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from assistant.__main__ import main
from assistant.accounting import ledger as ledger_module
from assistant.accounting.ledger import Finished, Ledger, Started
from assistant.chats import conversations
from assistant.chats.conversations import Chats
from assistant.database import DatabaseUnavailable, SchemaMismatch, masked
from assistant.evaluation import votes as votes_module
from assistant.evaluation.votes import Votes, leaderboard
from assistant.flow.service import Assistant
from assistant.knowledge import registry as registry_module
from assistant.web.access import FileAccess
from models.base import BadInput, Request
from tests.conftest import FakeChat, make_assistant

STORES = [
    (Ledger, ledger_module, "ledger.sqlite"),
    (Chats, conversations, "chats.sqlite"),
    (Votes, votes_module, "votes.sqlite"),
    (registry_module.open_registry, registry_module, "documents.sqlite"),
]


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then released: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_database_stops_start_up_naming_it(settings, monkeypatch, capsys):
    pytest.importorskip("psycopg")
    url = f"postgresql://app:s3cret@127.0.0.1:{_closed_port()}/assistant"
    with pytest.raises(DatabaseUnavailable) as err:
        Assistant.from_settings(settings.with_(database_url=url))
    message = str(err.value)
    assert masked(url) in message and "app:***@" in message and "s3cret" not in message
    assert "does not fall back to SQLite" in message
    # ... and nothing was quietly written to SQLite instead.
    assert not list(settings.home.glob("*.sqlite*"))

    monkeypatch.setenv("ASSISTANT_HOME", str(settings.home))
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", url)
    assert main(["ledger"]) == 1
    assert masked(url) in capsys.readouterr().err


def test_a_password_never_reaches_a_message():
    assert masked("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert masked("host=h password=pw dbname=d") == "host=h password=*** dbname=d"
    assert masked("postgresql://u@h/db") == "postgresql://u@h/db"


@pytest.mark.parametrize(
    "store, module, name", STORES, ids=["ledger", "chats", "votes", "documents"]
)
def test_a_database_written_by_newer_code_is_refused_not_written(open_db, store, module, name):
    first = store(open_db(name))
    expected = len(module.MIGRATIONS)
    first.db.execute(f"INSERT INTO {module.VERSION_TABLE} VALUES (?)", (expected + 1,))
    tables = first.db.all(f"SELECT version FROM {module.VERSION_TABLE} ORDER BY 1")
    with pytest.raises(SchemaMismatch, match=f"version {expected + 1}.*expects {expected}"):
        store(open_db(name))
    assert first.db.all(f"SELECT version FROM {module.VERSION_TABLE} ORDER BY 1") == tables


def test_a_replica_does_not_start_on_a_newer_documents_registry(pg_url, settings):
    from assistant.database import open_database

    newer = registry_module.open_registry(open_database(pg_url, settings.ledger_path))
    newer.db.execute(f"INSERT INTO {registry_module.VERSION_TABLE} VALUES (99)")
    newer.db.close()
    with pytest.raises(SchemaMismatch, match="documents_schema_version"):
        Assistant.from_settings(settings.with_(database_url=pg_url))


def _older_ledger(db, steps: int = 4):
    """The ledger as code that knew only the first ``steps`` migrations left it, with a row."""
    db.migrate(ledger_module.MIGRATIONS[:steps], ledger_module.VERSION_TABLE)
    db.execute("INSERT INTO events (request_id, phase, ts) VALUES ('old', 'started', 1.5)")


def test_an_older_schema_is_upgraded_on_sqlite_but_refused_on_a_shared_database(open_db):
    _older_ledger(open_db())
    db = open_db()
    if db.shared:  # replicas on the old code may still be writing: refuse, say what to do
        with pytest.raises(SchemaMismatch, match="version 4.*expects 8.*assistant migrate"):
            Ledger(db)
        assert db.one("SELECT MAX(version) FROM schema_version") == (4,)
        db = open_db()
    ledger = Ledger(db, upgrade=True if db.shared else None)
    # The row written before survives, closed: no replica of the old code is running.
    old = ledger.get("old")
    assert old["started_at"] == 1.5 and old["status"] == "error"
    assert old["error"].startswith("replica stopped") and old["replica"] is None
    assert db.one("SELECT MAX(version) FROM schema_version") == (len(ledger_module.MIGRATIONS),)


def test_migrate_command_upgrades_the_shared_database(pg_url, settings, monkeypatch, capsys):
    from assistant.database import open_database

    older = open_database(pg_url, settings.ledger_path)
    _older_ledger(older)
    older.close()
    shared = settings.with_(database_url=pg_url)
    with pytest.raises(SchemaMismatch):
        Assistant.from_settings(shared)
    monkeypatch.setenv("ASSISTANT_HOME", str(settings.home))
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", pg_url)
    assert main(["migrate"]) == 0
    said = capsys.readouterr().out
    assert "schema_version" in said and "from 4 to 8" in said
    assert "chats_schema_version" in said and "votes_schema_version" in said
    assert f"documents_schema_version in {masked(pg_url)}: schema version from 0 to 2" in said
    assert "from 0 to 1" in said
    assert Assistant.from_settings(shared).ledger.get("old") is not None


def test_replicas_starting_together_migrate_once(open_db):
    databases = [open_db() for _ in range(4)]  # opened first: the migrations then race
    barrier = threading.Barrier(len(databases))

    def start(db):
        barrier.wait()
        return Ledger(db)

    with ThreadPoolExecutor(len(databases)) as pool:
        ledgers = list(pool.map(start, databases))
    versions = ledgers[0].db.all("SELECT version FROM schema_version ORDER BY 1")
    assert versions == [(n,) for n in range(1, len(ledger_module.MIGRATIONS) + 1)]


def test_two_replicas_writing_at_once_leave_exactly_one_finished_row_per_request(open_db):
    replicas = [Ledger(open_db()), Ledger(open_db())]
    ids = [f"r{i}" for i in range(120)]

    def start(i: int) -> None:
        replicas[i % 2].start(Started(ids[i], f"s{i % 7}", "api", "text", "m", "r", 1.0))

    # Then each request is finished by BOTH replicas at once, as a retried
    # request that reached the other replica would be: one must win.
    attempts = [(replica, rid) for rid in ids for replica in replicas]
    random.Random(0).shuffle(attempts)

    def finish(attempt) -> bool:
        replica, rid = attempt
        try:
            replica.finish(Finished(rid, "ok", units_in=2, units_out=1))
        except replica.db.IntegrityError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(start, range(len(ids))))
        won = list(pool.map(finish, attempts))
    assert won.count(True) == len(ids) and won.count(False) == len(ids)
    counts = replicas[1].db.all(
        "SELECT phase, COUNT(*), COUNT(DISTINCT request_id) FROM events GROUP BY phase ORDER BY 1"
    )
    assert counts == [("finished", len(ids), len(ids)), ("started", len(ids), len(ids))]
    rows = replicas[0].rows()
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    assert {r["status"] for r in rows} == {"ok"} and sum(r["units_in"] for r in rows) == 240


def test_a_chat_continues_on_the_other_replica_and_stays_its_owners(open_db):
    a, b = Chats(open_db("chats.sqlite")), Chats(open_db("chats.sqlite"))
    chat = a.create("ana", system_prompt="Be brief.")
    a.add("ana", chat, "user", "Where is Paris?")
    b.add("ana", chat, "assistant", "In France.", {"status": "ok"})
    b.add("ana", chat, "user", "And Rome?")
    assert [m.content for m in a.history("ana", chat)] == [
        "Be brief.",
        "Where is Paris?",
        "In France.",
        "And Rome?",
    ]
    assert [c.title for c in b.list("ana")] == ["Where is Paris?"]
    # Another user, on either replica, neither sees nor touches it.
    bob = b.create("bob")
    for replica in (a, b):
        assert [c.id for c in replica.list("bob")] == [bob]
        for attempt in (
            lambda r=replica: r.turns("bob", chat),
            lambda r=replica: r.add("bob", chat, "user", "mine now"),
            lambda r=replica: r.rename("bob", chat, "mine now"),
            lambda r=replica: r.delete("bob", chat),
        ):
            with pytest.raises(BadInput, match="no chat"):
                attempt()
    assert len(a.turns("ana", chat)) == 3 and a.info("ana", chat).title == "Where is Paris?"


def test_a_vote_cast_on_one_replica_counts_on_the_other(open_db):
    a, b = Votes(open_db("votes.sqlite")), Votes(open_db("votes.sqlite"))
    ledger = Ledger(open_db())
    a.record("text", "small", "big", "b", user="ana")
    b.record("text", "small", "big", "b", user="bob")
    assert [r["model"] for r in leaderboard(a, ledger, "text")] == ["big", "small"]
    assert leaderboard(b, ledger, "text")[0]["votes"] == 2 and b.tasks() == ["text"]


def test_an_upload_through_one_replica_is_usable_through_the_other_by_its_browser_only(
    open_db, tmp_path
):
    shared = tmp_path / "mount" / "uploads"  # the shared folder, at one path on both
    picture = shared / "3f2a" / "red.png"
    picture.parent.mkdir(parents=True)
    picture.write_bytes(b"png")
    a, b = (FileAccess(shared, open_db("owners.sqlite"), tmp_path / "kept") for _ in "ab")
    a.owners.record([str(picture)], "ana-browser")  # A's gate saw the upload
    a.owners.record([str(picture)], "ana-browser")  # (twice: still one row)
    assert b.may_use(picture, "ana-browser") and not b.may_use(picture, "bob-browser")
    assert b.owners.owners(str(picture)) == {"ana-browser"}


def test_two_app_replicas_share_one_ledger_and_chat(pg_url, tmp_path, settings):
    """Two Assistants, each with its own ASSISTANT_HOME, on one PostgreSQL database."""
    homes = [settings.with_(home=tmp_path / name, database_url=pg_url) for name in "ab"]
    models = [FakeChat(["Paris."]), FakeChat(["Rome."])]
    a, b = (make_assistant(s, m) for s, m in zip(homes, models, strict=True))
    assert a.chats.db is a.ledger.db and a.ledger.db.shared

    chat = a.chats.create("ana")
    a.chats.add("ana", chat, "user", "Capital of France?")
    first = a.ask(Request("Capital of France?", session_id="s", user="ana"))
    a.chats.add("ana", chat, "assistant", first.result.text, {"status": first.status})
    history = b.chats.history("ana", chat)  # the chat goes on through the other replica
    second = b.ask(Request("And of Italy?", history=history, session_id="s", user="ana"))
    # The turns as they were, after the follow-up instruction where one is added
    # (flow/primed.py: with a stronger model installed to take follow-ups).
    seen = [m.content for m in models[1].seen[-1].history if m.role != "system"]
    assert seen == ["Capital of France?", "Paris."]

    for replica in (a, b):  # one ledger: each replica sees both requests, once each
        rows = replica.ledger.rows(session_id="s")
        assert [r["request_id"] for r in rows] == [second.request_id, first.request_id]
        assert {r["status"] for r in rows} == {"ok"} and {r["user"] for r in rows} == {"ana"}
    assert b.ledger.rows(user="bob") == [] and b.chats.list("bob") == []
    assert not list(tmp_path.glob("*/*.sqlite"))  # nothing in either home's SQLite


def test_connections_of_ended_threads_are_closed(open_db):
    db = open_db()

    def touch():
        db.one("SELECT 1")

    for _ in range(20):  # short-lived threads, as a server's pool retires idle workers
        thread = threading.Thread(target=touch)
        thread.start()
        thread.join()
    touch()
    # This thread's connection and the last worker's: no pile of twenty.
    assert len(db._opened) <= 2
    if db.shared:  # and the server agrees (a closed backend exits within moments)
        sql = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
        deadline = time.monotonic() + 5
        while db.one(sql)[0] > 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert db.one(sql)[0] <= 2


def test_a_lost_connection_is_said_plainly_and_the_next_request_reconnects(pg_url, settings):
    import psycopg

    app = make_assistant(settings.with_(database_url=pg_url), FakeChat(["Fine."]))
    assert app.ask(Request("hello")).status == "ok"
    with psycopg.connect(pg_url, autocommit=True) as admin:  # as a database restart would
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    lost = app.ask(Request("hello again"))
    assert lost.status == "error" and "was lost" in lost.error and masked(pg_url) in lost.error
    assert app.ask(Request("and now?")).status == "ok"
    statuses = [r["status"] for r in app.ledger.rows()]
    assert statuses == ["ok", "error", "ok"]  # the failed one is on the record too
