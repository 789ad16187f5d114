"""`models` (the catalog and what is installed) and `prepare` (convert installed packs once)."""

from __future__ import annotations

import json

from assistant.cli.common import progress
from assistant.settings import Settings


def add_commands(sub) -> None:
    models = sub.add_parser("models", help="list the catalog")
    models.add_argument("--json", action="store_true")
    models.add_argument(
        "--check",
        action="store_true",
        help="health-check remote endpoints first (GET /models: up, right shape, model listed)",
    )
    models.set_defaults(func=cmd_models)

    sub.add_parser("prepare", help="prepare packed weights once").set_defaults(func=cmd_prepare)


def cmd_models(args, settings: Settings) -> int:
    from assistant.accounting.ledger import Ledger
    from assistant.catalog.entries import Catalog
    from assistant.database import open_database
    from assistant.evaluation.cards import cards, quality_line, speed_line
    from assistant.evaluation.votes import Votes

    catalog = Catalog.load(extra=settings.catalog_file)
    # Listing models must not create a ledger or votes: read them only where they exist.
    shared = settings.database_url
    ledger = votes = None
    if shared or settings.ledger_path.is_file():
        ledger = Ledger(open_database(shared, settings.ledger_path))
    if shared or (settings.home / "votes.sqlite").is_file():
        votes = Votes(open_database(shared, settings.home / "votes.sqlite"))
    rows = cards(catalog, settings, ledger, votes, probe=args.check)
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return 0
    for r in rows:
        mark = "✓" if r["available"] else "·"
        print(
            f"{mark} {r['id']:<28} {r['family']:<7} {','.join(r['tasks']):<28} "
            f"{r['params_m']:>7.1f}M {r['size_mb']:>6} MB  {r['license']}"
        )
        print(f"    {r['what']}; {r['languages']}. {r['source']}: {r['availability']}")
        print(f"    quality: {quality_line(r)} · here: {speed_line(r)}")
    return 0


def cmd_prepare(args, settings: Settings) -> int:
    """Prepare every installed pack once, so the first request is fast.

    Not the entries marked ``prepare_ahead: false`` (see Entry): their first use
    converts them, with its progress shown.
    """
    from assistant.catalog.backends import prepare_weights
    from assistant.catalog.entries import Catalog
    from models.packs import is_installed

    settings.ensure_home()
    for entry in Catalog.load().entries.values():
        if entry.built and entry.prepare_ahead and entry.pack and is_installed(entry.pack):
            prepare_weights(entry, settings, progress=progress)
    return 0
