"""`ingest` (index files for questions) and `documents` (list or delete what is indexed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.cli.common import progress
from assistant.settings import Settings
from models.base import BadInput


def add_commands(sub) -> None:
    ingest = sub.add_parser("ingest", help="index documents and recordings for questions")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--user", default="local", help="whose collection (default: local)")
    ingest.add_argument("--shared", action="store_true", help="into the collection all users see")
    ingest.add_argument("--json", action="store_true")
    ingest.set_defaults(func=cmd_ingest)

    docs = sub.add_parser("documents", help="list indexed documents, or delete one")
    docs.add_argument("--user", default="local")
    docs.add_argument("--shared", action="store_true")
    docs.add_argument("--delete", metavar="ID", help="document id (or a unique prefix)")
    docs.add_argument("--json", action="store_true")
    docs.set_defaults(func=cmd_documents)


def cmd_ingest(args, settings: Settings) -> int:
    """Index files into the user's collection (or the shared one); one line or object each."""
    from assistant.flow.service import Assistant

    assistant = Assistant.from_settings(settings, progress=progress)
    worst = 0
    last = [0.0]

    def every_tenth(fraction: float, message: str) -> None:
        if abs(fraction - last[0]) >= 0.1 or fraction >= 1.0:  # every 10%, not every batch
            last[0] = fraction
            progress(f"  {fraction:4.0%} {message}")

    for name in args.paths:
        last[0] = 0.0
        outcome = assistant.ingest(
            Path(name), user=args.user, shared=args.shared, progress=every_tenth
        )
        if args.json:
            print(json.dumps(outcome.as_json(), ensure_ascii=False))
        elif outcome.status == "ok":
            print(outcome.result.text)
        else:
            print(outcome.error, file=sys.stderr)
        if outcome.status != "ok":
            worst = max(worst, 2 if outcome.error_type == "BadInput" else 1)
    return worst


def cmd_documents(args, settings: Settings) -> int:
    """List the indexed documents, or delete one by id (a unique prefix is enough)."""
    from assistant.flow.service import Assistant
    from assistant.knowledge.rag import collections_for

    assistant = Assistant.from_settings(settings, progress=progress)
    collections = ("shared",) if args.shared else collections_for(args.user)
    docs = assistant.store.documents(collections)
    if args.delete:
        chosen = [d for d in docs if d.doc_id.startswith(args.delete)]
        if len(chosen) != 1:
            raise BadInput(f"'{args.delete}' matches {len(chosen)} documents; give more of the id.")
        gone = assistant.store.delete(chosen[0].collection, chosen[0].doc_id)
        print(f"Deleted {gone.name} ({gone.chunks} chunks) from {gone.collection}.")
        return 0
    if args.json:
        print(json.dumps([d.__dict__ for d in docs], ensure_ascii=False, indent=1))
        return 0
    for d in docs:
        print(f"{d.doc_id[:12]}  {d.collection:<14} {d.status:<9} {d.chunks:>6} chunks  {d.name}")
    return 0
