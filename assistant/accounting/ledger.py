"""The ledger: an append-only record of every request and what it cost.

Each request writes two rows: ``started`` before the model runs and
``finished`` (with its status) after, so a crash leaves a started row as
evidence rather than silence. Triggers reject UPDATE and DELETE (and each
engine's other way around them), and the schema grows by numbered
migrations recorded in ``schema_version``. It lives in ASSISTANT_HOME's
ledger.sqlite (WAL mode lets the UI read while requests write), or in the
PostgreSQL database all replicas share (assistant/database.py): the same
migrations and the same rules on both. This module is the only writer.

Every started row names the replica (process) that ran it, so a request
whose replica died is closed by another one: assistant/accounting/replicas.py.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.accounting.costs import Cost
from assistant.accounting.ledger_schema import (  # COLUMNS, MIGRATIONS: read from here too
    COLUMNS,  # noqa: F401
    MIGRATIONS,
    VERSION_TABLE,
)
from assistant.accounting.replicas import REPLICA_STOPPED, Heartbeat, replica_id
from assistant.database import Database, NotSQLite, SQLiteDatabase, open_database

if TYPE_CHECKING:
    from assistant.settings import Settings


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
    device: str | None = "cpu"  # None: unknown (a request closed for a replica that died)
    extra: dict | None = None
    cost: Cost | None = None
    stopped: bool = False  # the person pressed Stop: shown as status "stopped"


class Ledger:
    """The ledger in ``where``: a Database (assistant/database.py), or an SQLite file's path.

    Opening it runs the migrations this code knows, or refuses a database
    whose schema version it does not expect (SchemaMismatch).
    """

    def __init__(
        self, where: Path | Database, upgrade: bool | None = None, replica: str | None = None
    ):
        self.db = where if isinstance(where, Database) else SQLiteDatabase(where)
        self.db.migrate(MIGRATIONS, VERSION_TABLE, upgrade)
        # This process, as the started rows name it (replicas.replica_id: name:pid:start).
        self.replica = replica or replica_id()
        self.heartbeat: Heartbeat | None = None  # started by open_ledger, for a writer

    def start(self, row: Started) -> None:
        self.db.execute(
            "INSERT INTO events (request_id, phase, ts, parent_id, session_id, source, task,"
            ' model, reason, confidence, prompt, "user", replica)'
            " VALUES (?, 'started', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                self.replica,
            ),
        )

    def finish(self, row: Finished) -> None:
        """Write the request's finished row; a second one for a request is refused.

        Except one case, where the first row stands and this one is dropped: the
        request was closed as "replica stopped" while this replica, paused past
        the heartbeat timeout, was taken for dead (assistant/accounting/replicas.py).
        """
        try:
            self._finish(row)
        except self.db.IntegrityError:
            closed = self.db.one(
                "SELECT error FROM events WHERE request_id = ? AND phase = 'finished'",
                (row.request_id,),
            )
            if not (closed and (closed[0] or "").startswith(REPLICA_STOPPED)):
                raise

    def close_stopped(self, request_id: str, error: str) -> bool:
        """Close a request whose replica stopped (a failed finished row); False if it had one."""
        try:
            self._finish(
                Finished(request_id, "error", error, device=None, extra={"closed_by": self.replica})
            )
        except self.db.IntegrityError:
            return False  # it finished, or another replica closed it first
        return True

    def _finish(self, row: Finished) -> None:
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


def open_ledger(settings: Settings, warn, log=print) -> Ledger:
    """The ledger ``settings`` name, with this replica's heartbeat running.

    The shared database when ASSISTANT_DATABASE_URL is set: an unreachable one
    or another schema version stops start-up. Without it,
    ASSISTANT_HOME/ledger.sqlite, set aside when it is not SQLite. Requests
    that stopped replicas (an earlier run included) left open are closed as
    failed now, and by the heartbeat as long as this process runs.
    """
    replica = replica_id(settings.replica_name)
    if settings.database_url:
        ledger = Ledger(open_database(settings.database_url, settings.ledger_path), replica=replica)
    else:
        ledger = open_or_set_aside(settings.ledger_path, warn, replica)
    ledger.heartbeat = Heartbeat(ledger, settings.replica_timeout_s, log)
    closed = ledger.heartbeat.start()
    if closed:
        log(
            f"Ledger: {len(closed)} request(s) left open by a replica that stopped were "
            "recorded as failed (replica stopped)."
        )
    return ledger


def open_or_set_aside(path: Path, warn, replica: str | None = None) -> Ledger:
    """The ledger at ``path``; a file there that is not SQLite is renamed, kept, and replaced.

    The app must start even when its ledger was damaged or overwritten; the
    old bytes are never deleted, only moved beside it, and ``warn`` says where.
    """
    try:
        return Ledger(path, replica=replica)
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
        return Ledger(path, replica=replica)
