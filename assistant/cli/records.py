"""`ledger` (the request ledger as a table, JSON or CSV) and `migrate` (the shared
database's schema brought up to this version)."""

from __future__ import annotations

import csv
import json
import sys
import time

from assistant.settings import Settings


def add_commands(sub) -> None:
    ledger = sub.add_parser("ledger", help="export the request ledger")
    ledger.add_argument("--json", action="store_true")
    ledger.add_argument("--csv", action="store_true")
    ledger.add_argument("--limit", type=int)
    ledger.set_defaults(func=cmd_ledger)

    sub.add_parser(
        "migrate", help="upgrade the shared database's schema (every replica stopped)"
    ).set_defaults(func=cmd_migrate)


def cmd_ledger(args, settings: Settings) -> int:
    from assistant.accounting.ledger import COLUMNS, Ledger
    from assistant.database import open_database

    settings.ensure_home()
    rows = Ledger(open_database(settings.database_url, settings.ledger_path)).rows(limit=args.limit)
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    elif args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        _print_table(rows)
    return 0


def cmd_migrate(args, settings: Settings) -> int:
    """Bring every store's schema to this version's (ledger, chats, votes, upload owners,
    documents' registry), with every replica stopped.

    Replicas upgrade an SQLite file by themselves; a shared database only
    here, since a replica still on the old code could be writing to it.
    """
    from assistant.accounting import ledger
    from assistant.chats import conversations
    from assistant.database import open_database
    from assistant.evaluation import votes
    from assistant.knowledge import registry
    from assistant.web import access

    settings.ensure_home()
    stores = (
        (ledger.MIGRATIONS, ledger.VERSION_TABLE, settings.ledger_path),
        (conversations.MIGRATIONS, conversations.VERSION_TABLE, settings.chats_path),
        (votes.MIGRATIONS, votes.VERSION_TABLE, settings.home / "votes.sqlite"),
        (access.OWNERS_MIGRATIONS, access.OWNERS_VERSION_TABLE, settings.upload_owners_path),
        (registry.MIGRATIONS, registry.VERSION_TABLE, settings.documents_dir / "documents.sqlite"),
    )
    for steps, table, path in stores:
        db = open_database(settings.database_url, path)
        before = db.migrate(steps, table, upgrade=True)
        change = f"from {before} to {len(steps)}" if before != len(steps) else f"{before}, already"
        print(f"{table} in {db.where}: schema version {change}.")
        db.close()
    return 0


def _print_table(rows: list[dict]) -> None:
    from assistant.web.ui.render import units_text, usd

    line = "{:<19}  {:<8}  {:<8}  {:<26}  {:>7}  {:>9}  {:>9}  {}"
    headings = ("started", "status", "task", "model", "run s", "$ here", "$ cloud")
    print(line.format(*headings, "what was counted"))
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"]))
        print(
            line.format(
                when,
                r["status"],
                r["task"] or "-",
                r["model"] or "-",
                f"{r['run_s'] or 0:.2f}",
                usd(r["usd_local"]),
                usd(r["usd_cloud"]),
                units_text(r["unit"], r["task"], r["units_in"], r["units_out"]),
            )
        )
    if not rows:
        print('(no requests yet: try  python -m assistant ask "hello")')
