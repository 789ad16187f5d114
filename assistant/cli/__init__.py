"""Command line: serve | ask | chats | models | ledger | migrate | prepare | ingest | documents |
bench | eval | compare | vote | leaderboard | tune | train | space.

    python -m assistant ask "What is the capital of France?" --json
    python -m assistant models --json
    python -m assistant ledger --csv

Exit codes: 0 ok, 1 the request failed or was refused, 2 bad input/usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from assistant.cli import ask, catalog, documents, evaluation, records, serving, tuning
from assistant.settings import Settings
from models.base import AssistantError, BadInput

# Each module adds its own commands; this order is the order `--help` lists them.
GROUPS = (ask, catalog, records, serving, documents, tuning, evaluation)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m assistant",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args, Settings.from_env())
    except BrokenPipeError:  # `... | head` closed our stdout: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except AssistantError as err:
        if getattr(args, "json", False):
            print(json.dumps({"status": err.status, "error": str(err)}, indent=1))
        print(str(err), file=sys.stderr)
        return 2 if isinstance(err, BadInput) else 1
