"""`ledger`: the request ledger as a table, JSON or CSV."""

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


def cmd_ledger(args, settings: Settings) -> int:
    from assistant.accounting.ledger import COLUMNS, Ledger

    settings.ensure_home()
    rows = Ledger(settings.ledger_path).rows(limit=args.limit)
    if args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    elif args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
    else:
        _print_table(rows)
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
