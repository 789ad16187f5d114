"""Votes from blind comparisons, kept with the ledger, and the leaderboard they make.

They live in ASSISTANT_HOME/votes.sqlite, or in the database replicas share
(ASSISTANT_DATABASE_URL), so a vote cast on one replica counts on all.

A vote names the two models in the order they were shown (A, B), so the
Bradley–Terry fit in rating.py sees exactly what the person judged. Speed
and cost beside each rating come from the ledger: what this machine
measured, not a datasheet.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from assistant.database import Database, Migration, SQLiteDatabase
from assistant.evaluation.rating import OUTCOMES, Vote, ratings
from models.base import BadInput

# Numbered like the ledger's; 1 adopts a votes.sqlite made before it was numbered.
VERSION_TABLE = "votes_schema_version"
MIGRATIONS = [
    Migration("""
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, task TEXT NOT NULL,
    a TEXT NOT NULL, b TEXT NOT NULL, outcome TEXT NOT NULL, "user" TEXT, prompt TEXT);
"""),
]


class Votes:
    """Votes in ``where``: a Database (shared by replicas) or an SQLite file's path."""

    def __init__(self, where: Path | Database, upgrade: bool | None = None):
        self.db = where if isinstance(where, Database) else SQLiteDatabase(where)
        self.db.migrate(MIGRATIONS, VERSION_TABLE, upgrade)

    def record(
        self, task: str, a: str, b: str, outcome: str, user: str = "local", prompt: str = ""
    ) -> None:
        if outcome not in OUTCOMES:
            raise BadInput(f"A vote is one of {', '.join(OUTCOMES)}; got '{outcome}'.")
        if a == b:
            raise BadInput("A vote compares two different models.")
        self.db.execute(
            'INSERT INTO votes (ts, task, a, b, outcome, "user", prompt) '
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (time.time(), task, a, b, outcome, user, prompt[:500]),
        )

    def all(self, task: str | None = None) -> list[Vote]:
        sql, args = "SELECT a, b, outcome FROM votes", ()
        if task:
            sql, args = sql + " WHERE task = ?", (task,)
        return [Vote(*row) for row in self.db.all(sql + " ORDER BY id", args)]

    def tasks(self) -> list[str]:
        return [r[0] for r in self.db.all("SELECT DISTINCT task FROM votes ORDER BY task")]


def leaderboard(votes: Votes, ledger, task: str | None = None) -> list[dict]:
    """Per task, models best first: rating with its 95 % interval, and measured speed and cost."""
    times = measured(ledger)
    board = []
    for t in [task] if task else votes.tasks():
        for rank, r in enumerate(ratings(votes.all(t)), start=1):
            stats = times.get((r.model, t), {})
            board.append(
                {
                    "task": t,
                    "rank": rank,
                    "model": r.model,
                    "rating": round(r.score),
                    "low": round(r.low),
                    "high": round(r.high),
                    "votes": r.votes,
                    **stats,
                }
            )
    return board


def measured(ledger, recent: int = 5000) -> dict[tuple[str, str], dict]:
    """Median run time and local cost per (model, task) over finished requests."""
    seen: dict[tuple[str, str], list[dict]] = {}
    for row in ledger.rows(limit=recent):
        if row["status"] == "ok" and row["model"]:
            seen.setdefault((row["model"], row["task"]), []).append(row)
    return {
        key: {
            "run_s_p50": round(statistics.median(r["run_s"] or 0 for r in rows), 3),
            "usd_local_p50": statistics.median(r["usd_local"] or 0 for r in rows),
            "requests": len(rows),
        }
        for key, rows in seen.items()
    }
