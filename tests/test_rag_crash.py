"""SIGKILL in the middle of an ingest, then ingest again: exactly the clean run's chunks."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from assistant.knowledge.rag import Store

ROOT = Path(__file__).resolve().parent.parent


def _ingest(home: Path, file: Path, kill_after: int | None) -> bool:
    """Run the worker; SIGKILL it after ``kill_after`` progress lines. True if it finished."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest_worker", str(home), str(file), "0.02"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = 0
    for line in proc.stdout:
        if line.startswith("DONE"):
            break
        seen += 1
        if kill_after is not None and seen >= kill_after:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    return proc.returncode == 0


def _state(home: Path) -> tuple[set[str], set[str], list]:
    store = Store(home / "documents", "fake")
    sql, chroma = store.chunk_ids("user-local")
    docs = [(d.name, d.status, d.chunks) for d in store.documents(["user-local"])]
    store.close()
    return sql, chroma, docs


def test_killed_ingests_end_with_exactly_the_clean_set_of_chunks(tmp_path):
    file = tmp_path / "big.txt"
    file.write_text(
        "\n\n".join(f"Paragraph {i}: " + "basalt rhyolite magma " * 20 for i in range(1400))
    )
    assert _ingest(tmp_path / "clean", file, None)
    clean_sql, clean_chroma, clean_docs = _state(tmp_path / "clean")
    assert clean_sql == clean_chroma and len(clean_sql) > 1000
    assert clean_docs == [("big.txt", "complete", len(clean_sql))]

    home = tmp_path / "crashed"
    rng = random.Random(7)
    for _ in range(5):  # five kills at random batches, on the same store
        finished = _ingest(home, file, kill_after=rng.randint(1, 18))  # of 22 batches
        assert not finished
        sql, chroma, docs = _state(home)
        assert docs == [] or docs[0][1] == "ingesting"  # never "complete" while partial
        # Chroma is written before SQLite, and nothing but the clean ids is ever written.
        assert sql <= chroma <= clean_sql
    assert _ingest(home, file, None)
    sql, chroma, docs = _state(home)
    assert sql == chroma == clean_sql
    assert docs == clean_docs
