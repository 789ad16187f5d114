"""Which replica ran each request, and closing the requests of replicas that died.

Every process that writes the ledger is a replica with an id, NAME:PID:START
(NAME: ASSISTANT_REPLICA_ID, else the host name), written on each started
row. A replica killed mid-request (SIGKILL, a crash, a machine gone) cannot
write that request's finished row, so another replica writes it: status
'error', "replica stopped: ...", a new row like every other (the ledger is
append-only; nothing is updated).

How a replica is known to be gone:

- SQLite (one machine): each replica holds an exclusive ``flock`` on a file
  of its own beside the ledger (``ledger.sqlite.replicas/``) while it runs,
  and the kernel drops it when the process dies, however it dies. So a
  replica starting up closes at once what an earlier run left open.
- PostgreSQL (several machines): a heartbeat row in ``replicas``, renewed
  every timeout/4 s. A replica not seen for the timeout
  (ASSISTANT_REPLICA_TIMEOUT_S, 60 s) is gone. The timeout must outlast a
  replica's longest pause (a saturated machine, a network blip): one taken
  for dead while alive finds its requests closed, and the closing row stands
  (Ledger.finish keeps the first).

Each replica sweeps at start and at every beat. Two sweeping at once are
harmless: the unique (request_id, phase) key lets one closing row through.
Only registered replicas are judged: every writer of the ledger starts a
Heartbeat (assistant/accounting/ledger.py's open_ledger does).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

try:
    import fcntl
except ImportError:  # Windows: no flock; the heartbeat alone decides
    fcntl = None

if TYPE_CHECKING:
    from assistant.accounting.ledger import Ledger

REPLICA_STOPPED = "replica stopped"  # how every closing row's error begins
TIMEOUT_S = 60.0

# A replica's requests that have no finished row (the index on events.replica finds them).
OPEN_ROWS = """
    SELECT s.request_id FROM events s
    WHERE s.replica = ? AND s.phase = 'started' AND NOT EXISTS (
        SELECT 1 FROM events f WHERE f.request_id = s.request_id AND f.phase = 'finished')
"""


def replica_id(name: str | None = None) -> str:
    """This process's id: NAME:PID:START-RANDOM, new at every start.

    A restarted replica is a new one (its predecessor's requests are closed
    as its predecessor's); the random part keeps two containers that share
    a host name and a PID apart.
    """
    start = int(time.time())
    return f"{name or socket.gethostname()}:{os.getpid()}:{start}-{secrets.token_hex(2)}"


class Heartbeat:
    """This replica's sign of life, and the sweep that closes what gone replicas left open."""

    def __init__(self, ledger: Ledger, timeout_s: float = TIMEOUT_S, log: Callable = print):
        self.ledger = ledger
        self.db = ledger.db
        self.timeout_s = timeout_s
        self.every_s = timeout_s / 4
        self.log = log  # where a failed beat is said (the database restarting)
        self._stop = threading.Event()
        self._held = None  # the open lock file of this replica (SQLite)
        path = getattr(self.db, "path", None)  # an SQLite database's file
        self.locks = path.with_name(path.name + ".replicas") if path and fcntl else None

    def start(self) -> list[str]:
        """Register, close what gone replicas left open, then beat until stop().

        Returns the request ids closed now.
        """
        if self.locks is not None:
            self.locks.mkdir(parents=True, exist_ok=True)
            self._held = open(self._lock_path(self.ledger.replica), "a")  # noqa: SIM115 (kept)
            fcntl.flock(self._held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.beat()
        closed = self.sweep()
        threading.Thread(target=self._run, name="ledger-heartbeat", daemon=True).start()
        return closed

    def stop(self) -> None:
        self._stop.set()
        if self._held is not None:
            self._held.close()  # releases the lock: this replica is gone
            self._held = None

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
                self.sweep()
            except Exception as err:  # noqa: BLE001  the next beat tries again
                self.log(
                    f"The ledger's heartbeat failed ({err}); trying again in {self.every_s:g} s."
                )

    def beat(self) -> None:
        now = time.time()
        self.db.execute(
            "INSERT INTO replicas (id, started, seen) VALUES (?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET seen = excluded.seen",
            (self.ledger.replica, now, now),
        )

    def sweep(self) -> list[str]:
        """Close the open requests of every replica that is gone; their ids."""
        closed: list[str] = []
        now = time.time()
        others = self.db.all("SELECT id, seen FROM replicas WHERE id <> ?", (self.ledger.replica,))
        for replica, seen in others:
            if not self._gone(replica, seen, now):
                continue
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seen))
            why = (
                f"{REPLICA_STOPPED}: the replica {replica} that ran this request stopped "
                f"before it finished (last seen {when})."
            )
            for (request_id,) in self.db.all(OPEN_ROWS, (replica,)):
                if self.ledger.close_stopped(request_id, why):
                    closed.append(request_id)
            # Its seen too: a replica only paused, beating again meanwhile, stays listed.
            self.db.execute("DELETE FROM replicas WHERE id = ? AND seen = ?", (replica, seen))
            if self.locks is not None:
                self._lock_path(replica).unlink(missing_ok=True)
        return closed

    def _gone(self, replica: str, seen: float, now: float) -> bool:
        if self.locks is not None:
            try:
                fd = os.open(self._lock_path(replica), os.O_RDWR)
            except FileNotFoundError:
                pass  # registered without a lock file: judged by its heartbeat
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False  # its process holds the lock: alive
                finally:
                    os.close(fd)  # (releases the lock if this took it)
                return True
        return seen < now - self.timeout_s

    def _lock_path(self, replica: str) -> Path:
        return self.locks / (hashlib.sha256(replica.encode()).hexdigest()[:20] + ".lock")
