"""A process that answers requests forever with a fake model, printing ACK <id>
after each Outcome it has been handed; tests/test_ledger_crash.py kills it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from assistant.accounting.ledger import Ledger
from assistant.catalog.entries import Catalog
from assistant.database import open_database
from assistant.flow.outcome import Outcome
from assistant.flow.pool import Pool
from assistant.flow.service import Assistant
from assistant.settings import Settings
from models.base import Adapter, Request, Result, Usage


class Sleepy(Adapter):
    family = "text"
    tasks = ("text",)

    def load(self) -> None:
        pass

    def stream(self, request, cancel=None):
        time.sleep(0.002)  # long enough for kills to land mid-request
        yield "ok"
        yield Result(text="ok", usage=Usage(3, 1, "tokens"))


def main(home: str) -> None:
    # ASSISTANT_DATABASE_URL: one of several replicas on a shared ledger.
    url = os.environ.get("ASSISTANT_DATABASE_URL") or None
    settings = Settings(home=Path(home), database_url=url)
    settings.ensure_home()
    catalog = Catalog.load()
    pool = Pool(lambda model_id: Sleepy(), 1024, {})
    ledger = Ledger(open_database(settings.database_url, settings.ledger_path))
    assistant = Assistant(settings, catalog, pool, ledger)
    n = 0
    while True:
        n += 1
        for item in assistant.handle(Request(text=f"question {n}", session_id="crash")):
            if isinstance(item, Outcome):
                print(f"ACK {item.request_id}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
