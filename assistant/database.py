"""Where the ledger, chats and votes live: SQLite files (the default) or one PostgreSQL database.

With ASSISTANT_DATABASE_URL unset each store keeps its own SQLite file in
ASSISTANT_HOME, as it always has. Set, every store lives in that PostgreSQL
database, which all replicas of the app share; psycopg is imported only then.

The stores talk to a Database, never to a driver. It hands out one
connection per thread, spells the few things the dialects write
differently, and runs a store's numbered migrations, the same list on both,
checking the schema version first: a replica whose code expects another
version refuses to start rather than write. A URL that cannot be reached
stops start-up naming it: falling back to SQLite would split the state
between replicas without anyone noticing.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from models.base import AssistantError, BadInput


class DatabaseUnavailable(AssistantError):
    """ASSISTANT_DATABASE_URL is set but that database cannot be used."""


class SchemaMismatch(AssistantError):
    """The database's schema version is not the one this code was written for."""


class NotSQLite(BadInput):
    """The file where an SQLite database should be is something else."""


@dataclass(frozen=True)
class Migration:
    """One numbered step of a store's schema, the same step on both databases.

    ``sql`` runs on both; it is written as SQLite spells it and translated
    for PostgreSQL (``POSTGRES_TYPES``). What cannot be translated, the
    triggers, is written out for each: ``sqlite`` and ``postgres``.
    """

    sql: str = ""
    sqlite: str = ""
    postgres: str = ""


# SQLite's spelling → PostgreSQL's. REAL is 4 bytes there: an epoch timestamp would round
# to about two minutes.
# ALWAYS: no writer can choose a row's number, as no writer can replace a row.
POSTGRES_TYPES = (
    (r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    (r"\bREAL\b", "DOUBLE PRECISION"),
)


def open_database(url: str | None, sqlite_path: Path) -> Database:
    """The shared PostgreSQL database at ``url`` when given, else the SQLite file."""
    return PostgresDatabase(url) if url else SQLiteDatabase(sqlite_path)


class Database(ABC):
    """Connections to one database, one per thread (Gradio runs handlers on a pool)."""

    shared = False  # True where several replicas may write at once
    where = ""  # the file or the URL (without its password), for messages
    IntegrityError: type[Exception] = Exception  # a unique key or an append-only guard said no

    def __init__(self) -> None:
        self._local = threading.local()
        self._opened: list[tuple[threading.Thread, object]] = []  # (thread, its connection)
        self._lock = threading.Lock()
        self._conn()  # connect now: a database that cannot be used stops start-up

    @abstractmethod
    def _connect(self):
        """A new connection, in autocommit mode (transactions are explicit)."""

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self._broken(conn):
            return conn
        fresh = self._connect()
        self._local.conn = fresh
        with self._lock:
            # Worker threads come and go (AnyIO retires idle ones): close what
            # ended threads held, and a broken connection this one replaces, so
            # a long-running server does not pile up connections to the database.
            kept = [(threading.current_thread(), fresh)]
            for thread, held in self._opened:
                if thread.is_alive() and held is not conn:
                    kept.append((thread, held))
                else:
                    held.close()
            self._opened = kept
        return fresh

    def _broken(self, conn) -> bool:
        return False

    def _query(self, sql: str, args: Sequence) -> tuple[str, tuple | None]:
        """What the driver is given for a statement written with ``?`` placeholders."""
        return sql, tuple(args)

    def execute(self, sql: str, args: Sequence = ()):
        """Run one statement with ``?`` placeholders; the driver's cursor."""
        return self._conn().execute(*self._query(sql, args))

    def one(self, sql: str, args: Sequence = ()) -> tuple | None:
        return self.execute(sql, args).fetchone()

    def all(self, sql: str, args: Sequence = ()) -> list[tuple]:
        return self.execute(sql, args).fetchall()

    def dicts(self, sql: str, args: Sequence = ()) -> list[dict]:
        cursor = self.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @abstractmethod
    def transaction(self):
        """A context: the statements inside commit together or not at all."""

    def migrate(self, steps: Sequence[Migration], table: str, upgrade: bool | None = None) -> int:
        """Bring a store's schema to ``len(steps)``; the version found before.

        A version above ``len(steps)`` was written by newer code: refused.
        One below is upgraded on SQLite (one machine, one version of the
        code); on a shared database only with ``upgrade`` (`python -m
        assistant migrate`), since replicas still on the old code may be
        writing to it. An empty database is always set up.
        """
        expected = len(steps)
        upgrade = not self.shared if upgrade is None else upgrade
        with self.transaction():
            self._lock_migrations(table)
            self.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
            current = self.one(f"SELECT MAX(version) FROM {table}")[0] or 0
            if current > expected or (0 < current < expected and not upgrade):
                raise SchemaMismatch(self._mismatch(table, current, expected))
            for number, step in enumerate(steps[current:], start=current + 1):
                for statement in self._statements(step):
                    self.execute(statement)
                self.execute(f"INSERT INTO {table} VALUES (?)", (number,))
        return current

    def _mismatch(self, table: str, found: int, expected: int) -> str:
        if found > expected:
            return (
                f"The database {self.where} has schema version {found} ({table}), written "
                f"by a newer version of the assistant; this one expects {expected} and "
                "will not write to it. Run the same version on every replica."
            )
        return (
            f"The database {self.where} has schema version {found} ({table}); this "
            f"version of the assistant expects {expected}. Other replicas may still "
            "be writing the old schema: stop them all, run `python -m assistant migrate` "
            "once, then start every replica on the new version."
        )

    @abstractmethod
    def _lock_migrations(self, table: str) -> None:
        """Inside the migration's transaction: no other process migrates ``table`` now."""

    @abstractmethod
    def _statements(self, step: Migration) -> list[str]:
        """The statements that make one migration step on this database."""

    def close(self) -> None:
        """Close every connection this object opened, in any thread."""
        with self._lock:
            opened, self._opened = self._opened, []
        for _thread, conn in opened:
            conn.close()
        self._local = threading.local()


class SQLiteDatabase(Database):
    IntegrityError = sqlite3.IntegrityError

    def __init__(self, path: Path):
        self.path = Path(path)
        self.where = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__()

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so close() may run elsewhere: each
        # thread uses its own connection.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for writers
        except sqlite3.DatabaseError as err:
            conn.close()
            raise NotSQLite(
                f"{self.path} cannot be opened as SQLite ({err}). Move the file aside "
                "(it is kept, not deleted) or set ASSISTANT_HOME to another folder, "
                "then start again."
            ) from err
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _lock_migrations(self, table: str) -> None:
        pass  # BEGIN IMMEDIATE took the database's one write lock already

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _statements(self, step: Migration) -> list[str]:
        # Split into statements (executescript would commit), keeping trigger bodies whole.
        parts, buf = [], []
        for line in f"{step.sql}\n{step.sqlite}".strip().splitlines():
            buf.append(line)
            joined = "\n".join(buf).strip()
            if joined.endswith(";") and sqlite3.complete_statement(joined):
                parts.append(joined)
                buf = []
        return parts


class PostgresDatabase(Database):
    shared = True

    def __init__(self, url: str):
        self.url = url
        self.where = masked(url)
        try:
            import psycopg
        except ImportError as err:
            raise DatabaseUnavailable(
                f"ASSISTANT_DATABASE_URL is set ({self.where}) but psycopg is not "
                "installed: pip install -r requirements.txt."
            ) from err
        self._psycopg = psycopg
        self.IntegrityError = psycopg.IntegrityError
        super().__init__()

    def _connect(self):
        try:
            return self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as err:
            raise DatabaseUnavailable(
                f"The database ASSISTANT_DATABASE_URL={self.where} cannot be reached "
                f"({_first_line(err)}). Start it or correct the URL. The assistant does not fall "
                "back to SQLite: replicas would stop sharing their ledger, chats and votes."
            ) from err

    def _broken(self, conn) -> bool:
        return conn.closed or conn.broken  # the server restarted: connect again

    def execute(self, sql: str, args: Sequence = ()):
        conn = self._conn()
        try:
            return conn.execute(*self._query(sql, args))
        except self._psycopg.OperationalError as err:
            if not self._broken(conn):
                raise  # a deadlock or a cancelled query: the connection is fine
            raise DatabaseUnavailable(
                f"The connection to the database ASSISTANT_DATABASE_URL={self.where} was "
                f"lost ({_first_line(err)}). The next request connects again."
            ) from err

    def _query(self, sql: str, args: Sequence) -> tuple[str, tuple | None]:
        # psycopg's placeholder is %s, so a literal % is written %%; without
        # arguments the text is sent as it is (and may hold several statements).
        if not args:
            return sql, None
        return sql.replace("%", "%%").replace("?", "%s"), tuple(args)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._conn().transaction():
            yield

    def _lock_migrations(self, table: str) -> None:
        # Replicas starting together: one migrates, the others wait, then find it done.
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (table,))

    def _statements(self, step: Migration) -> list[str]:
        sql = step.sql
        for sqlite_word, postgres_word in POSTGRES_TYPES:
            sql = re.sub(sqlite_word, postgres_word, sql)
        text = f"{sql}\n{step.postgres}".strip()
        return [text] if text else []


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def masked(url: str) -> str:
    """A database URL fit for a message or a log: its password replaced by ***."""
    url = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(password=)\S+", r"\1***", url)
