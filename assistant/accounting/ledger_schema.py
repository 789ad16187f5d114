"""The ledger's schema: its numbered migrations, the same list on SQLite and PostgreSQL.

Kept apart from assistant/accounting/ledger.py (the only writer) so that the
history of the table, which only grows, does not crowd the code that writes
it. A step is never edited once released: a change is a new step.
"""

from __future__ import annotations

from assistant.database import Migration

# The guards' PostgreSQL half: one function the triggers call. Its error is an
# integrity violation, as SQLite's RAISE(ABORT) is, so callers catch one kind.
PG_APPEND_ONLY = """
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$;
"""

# Migration 8's closing rows for requests an earlier run left open; ``now`` is each
# engine's spelling of the epoch time.
CLOSE_EARLIER_RUNS = """
    INSERT INTO events (request_id, phase, ts, status, error, device)
        SELECT s.request_id, 'finished', {now}, 'error',
               'replica stopped: the process that ran this request stopped before it finished'
               || ' (left open by a run before replicas were recorded)', NULL
        FROM events s
        WHERE s.phase = 'started' AND NOT EXISTS (
            SELECT 1 FROM events f WHERE f.request_id = s.request_id AND f.phase = 'finished');
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
    # 8: which replica started each request (assistant/accounting/replicas.py), and
    # the replicas' heartbeats, so that a replica's requests left open when it died are
    # closed by a finished row of status 'error' ("replica stopped"), never by an UPDATE.
    # Requests open when this runs were left by an earlier run: SQLite upgrades at start,
    # and a shared database only by `migrate` with every replica stopped. They are closed
    # here, once, since no later sweep can tell whose they were.
    Migration(
        """
    ALTER TABLE events ADD COLUMN replica TEXT;
    CREATE INDEX events_replica ON events (replica);
    CREATE TABLE replicas (
        id      TEXT PRIMARY KEY,
        started REAL NOT NULL,
        seen    REAL NOT NULL
    );
    DROP VIEW requests;
    CREATE VIEW requests AS
        SELECT s.request_id, s.parent_id, s.session_id, s.source, s.ts AS started_at,
               f.ts AS finished_at, s.task, s.model, s.reason, s.confidence,
               CASE WHEN f.stopped = 1 THEN 'stopped' ELSE COALESCE(f.status, 'started') END
                   AS status, f.error,
               f.queue_s, f.load_s, f.run_s, f.units_in, f.units_out, f.unit, f.device, f.extra,
               f.device_seconds, f.energy_j, f.energy_method, f.usd_local, f.usd_cloud,
               f.cloud_ref, s.prompt, s."user", s.replica
        FROM events s LEFT JOIN events f
             ON f.request_id = s.request_id AND f.phase = 'finished'
        WHERE s.phase = 'started';
    """,
        sqlite=CLOSE_EARLIER_RUNS.format(now="(julianday('now') - 2440587.5) * 86400.0"),
        postgres=CLOSE_EARLIER_RUNS.format(now="EXTRACT(EPOCH FROM clock_timestamp())"),
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
    "replica",
)
