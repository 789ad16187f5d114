"""Ingest one file into a store with a slow fake embedder, printing progress;
tests/test_rag_crash.py kills it with SIGKILL part-way and runs it again."""

from __future__ import annotations

import sys
from pathlib import Path

from assistant.knowledge.documents import read
from assistant.knowledge.rag import Store
from tests.conftest import FakeEmbedder


def main(home: str, file: str, delay_s: str) -> None:
    path = Path(file)
    store = Store(Path(home) / "documents", "fake")
    embed = FakeEmbedder(float(delay_s)).embed
    store.add(
        path,
        path.name,
        read(path),
        "user-local",
        embed,
        lambda fraction, message: print(f"PROGRESS {fraction:.3f}", flush=True),
    )
    print("DONE", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
