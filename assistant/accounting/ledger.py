"""The ledger: an append-only record of every request and what it cost.

Each request writes two rows: ``started`` before the model runs and
``finished`` (with its status) after, so a crash leaves a started row as
evidence rather than silence. Triggers reject UPDATE and DELETE (and each
engine's other way around them), and the schema grows by numbered
migrations recorded in ``schema_version``. It lives in ASSISTANT_HOME's
ledger.sqlite (WAL mode lets the UI read while requests write), or in the
PostgreSQL database all replicas share (assistant/database.py): the same
migrations and the same rules on both. This module is the only writer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.accounting.costs import Cost
from assistant.database import Database, Migration, NotSQLite, SQLiteDatabase, open_database

if TYPE_CHECKING:
    from assistant.settings import Settings

# The guards' PostgreSQL half: one function the triggers call. Its error is an
# integrity violation, as SQLite's RAISE(ABORT) is, so callers catch one kind.
PG_APPEND_ONLY = """
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""

VERSION_TABLE = "schema_version"  # one row per migration run: (number)
MIGRATIONS: list[Migration] = [
    # 1: the event table, its append-only guards, and a view of one row per request.
    Migration(
        """
    CREATE TABLE events (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id  TEXT NOT NULL,
        phase       TEXT NOT NULL CHECK (phase IN ('started', 'finished')),
        ts          REAL NOT NULL,
        parent_id   TEXT,
        session_id  TEXT,
        source      TEXT,
        task        TEXT,
        model       TEXT,
        reason      TEXT,
        confidence  REAL,
        status      TEXT CHECK (status IN ('ok', 'error', 'refused') OR status IS NULL),
        error       TEXT,
        queue_s     REAL,
        load_s      REAL,
        run_s       REAL,
        units_in    INTEGER,
        units_out   INTEGER,
        unit        TEXT,
        device      TEXT,
        extra       TEXT,
        UNIQUE (request_id, phase)
    );
    CREATE VIEW requests AS
        SELECT s.request_id, s.parent_id, s.session_id, s.source, s.ts AS started_at,
               f.ts AS finished_at, s.task, s.model, s.reason, s.confidence,
               COALESCE(f.status, 'started') AS status, f.error,
               f.queue_s, f.load_s, f.run_s, f.units_in, f.units_out, f.unit, f.device, f.extra
        FROM events s LEFT JOIN events f
             ON f.request_id = s.request_id AND f.phase = 'finished'
        WHERE s.phase = 'started';
    """,
        sqlite="""
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
    """,
        postgres=PG_APPEND_ONLY
        + """
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
    """,
    ),
    # 2: what each request cost (assistant/accounting/costs.py), on the finished row.
    Migration(
        """
    ALTER TABLE events ADD COLUMN device_seconds REAL;
    ALTER TABLE events ADD COLUMN energy_j REAL;
    ALTER TABLE events ADD COLUMN energy_method TEXT;
    ALTER TABLE events ADD COLUMN usd_local REAL;
    ALTER TABLE events ADD COLUMN usd_cloud REAL;
    ALTER TABLE events ADD COLUMN cloud_ref TEXT;
    DROP VIEW requests;
    CREATE VIEW requests AS
        SELECT s.request_id, s.parent_id, s.session_id, s.source, s.ts AS started_at,
               f.ts AS finished_at, s.task, s.model, s.reason, s.confidence,
               COALESCE(f.status, 'started') AS status, f.error,
               f.queue_s, f.load_s, f.run_s, f.units_in, f.units_out, f.unit, f.device, f.extra,
               f.device_seconds, f.energy_j, f.energy_method, f.usd_local, f.usd_cloud,
               f.cloud_ref
        FROM events s LEFT JOIN events f
             ON f.request_id = s.request_id AND f.phase = 'finished'
        WHERE s.phase = 'started';
    """
    ),
    # 3: indexes for the questions asked on every request (a model's typical
    # cost for the router's alternatives, a session's spend for its budget),
    # which scanned the whole table: ~10 ms per alternative at 20k requests.
    Migration(
        """
    CREATE INDEX events_model_task ON events (model, task, ts);
    CREATE INDEX events_session ON events (session_id);
    """
    ),
    # 4: how the prompt was made (chat, template, shots, system prompt), on the started row.
    Migration(
        """
    ALTER TABLE events ADD COLUMN prompt TEXT;
    DROP VIEW requests;
    CREATE VIEW requests AS
        SELECT s.request_id, s.parent_id, s.session_id, s.source, s.ts AS started_at,
               f.ts AS finished_at, s.task, s.model, s.reason, s.confidence,
               COALESCE(f.status, 'started') AS status, f.error,
               f.queue_s, f.load_s, f.run_s, f.units_in, f.units_out, f.unit, f.device, f.extra,
               f.device_seconds, f.energy_j, f.energy_method, f.usd_local, f.usd_cloud,
               f.cloud_ref, s.prompt
        FROM events s LEFT JOIN events f
             ON f.request_id = s.request_id AND f.phase = 'finished'
        WHERE s.phase = 'started';
    """
    ),
    # 5: whose request it was (login name, or "local"), for per-user daily quotas.
    Migration(
        """
    ALTER TABLE events ADD COLUMN "user" TEXT;
    CREATE INDEX events_user ON events ("user", ts);
    DROP VIEW requests;
    CREATE VIEW requests AS
        SELECT s.request_id, s.parent_id, s.session_id, s.source, s.ts AS started_at,
               f.ts AS finished_at, s.task, s.model, s.reason, s.confidence,
               COALESCE(f.status, 'started') AS status, f.error,
               f.queue_s, f.load_s, f.run_s, f.units_in, f.units_out, f.unit, f.device, f.extra,
               f.device_seconds, f.energy_j, f.energy_method, f.usd_local, f.usd_cloud,
               f.cloud_ref, s.prompt, s."user"
        FROM events s LEFT JOIN events f
             ON f.request_id = s.request_id AND f.phase = 'finished'
        WHERE s.phase = 'started';
    """
    ),
    # 6: INSERT OR REPLACE deletes the row it conflicts with, and SQLite fires no
    # DELETE trigger for that (recursive_triggers is off): refuse it before it starts.
    # PostgreSQL has no REPLACE (ON CONFLICT DO UPDATE fires the UPDATE guard);
    # its way around row triggers is TRUNCATE, refused the same way.
    Migration(
        sqlite="""
    CREATE TRIGGER events_no_replace BEFORE INSERT ON events
        WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq
                     OR (request_id = NEW.request_id AND phase = NEW.phase))
        BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
    """,
        postgres="""
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
    """,
    ),
    # 7: a reply the person stopped. Its finished row keeps status 'ok' (the
    # CHECK of migration 1 cannot change without copying the table); the view
    # shows it as 'stopped', with the tokens produced before the Stop.
    Migration(
        """
    ALTER TABLE events ADD COLUMN stopped INTEGER;
    DROP VIEW requests;
    CREATE VIEW requests AS
        SELECT s.request_id, s.parent_id, s.session_id, s.source, s.ts AS started_at,
               f.ts AS finished_at, s.task, s.model, s.reason, s.confidence,
               CASE WHEN f.stopped = 1 THEN 'stopped' ELSE COALESCE(f.status, 'started') END
                   AS status, f.error,
               f.queue_s, f.load_s, f.run_s, f.units_in, f.units_out, f.unit, f.device, f.extra,
               f.device_seconds, f.energy_j, f.energy_method, f.usd_local, f.usd_cloud,
               f.cloud_ref, s.prompt, s."user"
        FROM events s LEFT JOIN events f
             ON f.request_id = s.request_id AND f.phase = 'finished'
        WHERE s.phase = 'started';
    """
    ),
]

COLUMNS = (
    "request_id",
    "parent_id",
    "session_id",
    "source",
    "started_at",
    "finished_at",
    "task",
    "model",
    "reason",
    "confidence",
    "status",
    "error",
    "queue_s",
    "load_s",
    "run_s",
    "units_in",
    "units_out",
    "unit",
    "device",
    "extra",
    "device_seconds",
    "energy_j",
    "energy_method",
    "usd_local",
    "usd_cloud",
    "cloud_ref",
    "prompt",
    "user",
)


@dataclass(frozen=True)
class Started:
    request_id: str
    session_id: str
    source: str  # "ui" | "cli" | "api" | "mcp" | "gradio-api" (assistant/web/ui/tools.py)
    task: str
    model: str
    reason: str
    confidence: float
    parent_id: str | None = None
    prompt: dict | None = None  # {"chat", "template", "shots", "system_prompt"} when used
    user: str | None = None  # login name ("local" without ASSISTANT_AUTH)


@dataclass(frozen=True)
class Finished:
    request_id: str
    status: str  # "ok" | "error" | "refused"
    error: str | None = None
    queue_s: float = 0.0
    load_s: float = 0.0
    run_s: float = 0.0
    units_in: int = 0
    units_out: int = 0
    unit: str = "tokens"
    device: str = "cpu"
    extra: dict | None = None
    cost: Cost | None = None
    stopped: bool = False  # the person pressed Stop: shown as status "stopped"


class Ledger:
    """The ledger in ``where``: a Database (assistant/database.py), or an SQLite file's path.

    Opening it runs the migrations this code knows, or refuses a database
    whose schema version it does not expect (SchemaMismatch).
    """

    def __init__(self, where: Path | Database, upgrade: bool | None = None):
        self.db = where if isinstance(where, Database) else SQLiteDatabase(where)
        self.db.migrate(MIGRATIONS, VERSION_TABLE, upgrade)

    def start(self, row: Started) -> None:
        self.db.execute(
            "INSERT INTO events (request_id, phase, ts, parent_id, session_id, source, task,"
            ' model, reason, confidence, prompt, "user")'
            " VALUES (?, 'started', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.request_id,
                time.time(),
                row.parent_id,
                row.session_id,
                row.source,
                row.task,
                row.model,
                row.reason,
                row.confidence,
                json.dumps(row.prompt) if row.prompt else None,
                row.user,
            ),
        )

    def finish(self, row: Finished) -> None:
        c = row.cost
        self.db.execute(
            "INSERT INTO events (request_id, phase, ts, status, error, queue_s, load_s, run_s,"
            " units_in, units_out, unit, device, extra, device_seconds, energy_j, energy_method,"
            " usd_local, usd_cloud, cloud_ref, stopped)"
            " VALUES (?, 'finished', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.request_id,
                time.time(),
                row.status,
                row.error,
                row.queue_s,
                row.load_s,
                row.run_s,
                row.units_in,
                row.units_out,
                row.unit,
                row.device,
                json.dumps(row.extra) if row.extra else None,
                c.device_seconds if c else None,
                c.energy_j if c else None,
                c.energy_method if c else None,
                c.usd_local if c else None,
                c.usd_cloud if c else None,
                c.cloud_ref if c else None,
                1 if row.stopped else None,
            ),
        )

    def rows(
        self, session_id: str | None = None, limit: int | None = None, user: str | None = None
    ) -> list[dict]:
        """Requests, newest first; of one session and/or one user when given."""
        sql = "SELECT * FROM requests"
        where, args = [], []
        # "user" quoted: unquoted, PostgreSQL reads it as the connected role's name.
        for column, value in (("session_id", session_id), ('"user"', user)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.db.dicts(sql, args)

    def session_spend(self, session_id: str) -> float:
        """$ here spent so far by one session."""
        row = self.db.one(
            "SELECT COALESCE(SUM(usd_local), 0) FROM requests WHERE session_id = ?",
            (session_id,),
        )
        return float(row[0])

    def user_spend(self, user: str, since: float) -> float:
        """$ here spent by one user's requests started since ``since`` (epoch seconds)."""
        row = self.db.one(
            'SELECT COALESCE(SUM(usd_local), 0) FROM requests WHERE "user" = ? AND started_at >= ?',
            (user, since),
        )
        return float(row[0])

    def typical_cost(self, model: str, task: str, recent: int = 50) -> tuple[float | None, int]:
        """(median $ here of the model's recent successful requests for a task, how many)."""
        values = sorted(
            r[0]
            for r in self.db.all(
                "SELECT usd_local FROM requests WHERE model = ? AND task = ? AND status = 'ok'"
                " AND usd_local IS NOT NULL ORDER BY started_at DESC LIMIT ?",
                (model, task, recent),
            )
        )
        if not values:
            return None, 0
        mid = len(values) // 2
        median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
        return median, len(values)

    def get(self, request_id: str) -> dict | None:
        rows = self.db.dicts("SELECT * FROM requests WHERE request_id = ?", (request_id,))
        return rows[0] if rows else None


def open_ledger(settings: Settings, warn) -> Ledger:
    """The ledger ``settings`` name: the shared database when ASSISTANT_DATABASE_URL is set.

    Without it, ASSISTANT_HOME/ledger.sqlite, set aside when it is not SQLite.
    With it, an unreachable database or another schema version stops start-up.
    """
    if settings.database_url:
        return Ledger(open_database(settings.database_url, settings.ledger_path))
    return open_or_set_aside(settings.ledger_path, warn)


def open_or_set_aside(path: Path, warn) -> Ledger:
    """The ledger at ``path``; a file there that is not SQLite is renamed, kept, and replaced.

    The app must start even when its ledger was damaged or overwritten; the
    old bytes are never deleted, only moved beside it, and ``warn`` says where.
    """
    try:
        return Ledger(path)
    except NotSQLite:
        kept = path.with_name(f"{path.name}.not-sqlite-{time.strftime('%Y%m%d-%H%M%S')}")
        path.rename(kept)
        for suffix in ("-wal", "-shm"):  # SQLite's side files belong to the old file
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.rename(kept.with_name(kept.name + suffix))
        warn(
            f"The ledger {path} was not an SQLite database; it was kept as {kept.name} "
            "and a new ledger was started."
        )
        return Ledger(path)
