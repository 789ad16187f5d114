"""`eval` (score models on a dataset), `compare` (one prompt, several models side by side),
`vote` on a comparison, and the `leaderboard` those votes make."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.cli.common import existing_files, progress
from assistant.settings import Settings
from models.base import BadInput


def add_commands(sub) -> None:
    ev = sub.add_parser("eval", help="score models on your own dataset (JSONL or CSV)")
    ev.add_argument("dataset", help='lines of {"id", "input", "attachments", "expected"}')
    ev.add_argument("--models", required=True, help="catalog ids, comma-separated")
    ev.add_argument("--metric", help="contains (text) | exact | wer (speech) | json | judge")
    ev.add_argument("--judge", help="with --metric judge: the text model that grades")
    ev.add_argument("--against", metavar="RUN_ID", help="show item by item what changed since run")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    cmp = sub.add_parser("compare", help="one prompt to 2-4 models at once, side by side")
    cmp.add_argument("text", help="the prompt")
    cmp.add_argument("--attach", action="append", default=[], metavar="FILE")
    cmp.add_argument("--models", required=True, help="2 to 4 catalog ids, comma-separated")
    cmp.add_argument("--user", default="local", help="whose documents are searched")
    cmp.add_argument("--blind", action="store_true", help="hide the names until you vote")
    cmp.add_argument("--json", action="store_true")
    cmp.set_defaults(func=cmd_compare)

    vote = sub.add_parser("vote", help="vote on a two-model comparison (feeds the leaderboard)")
    vote.add_argument("id", help="the id `compare` printed")
    vote.add_argument("outcome", choices=["a", "b", "tie", "both_bad"])
    vote.add_argument("--user", default="local")
    vote.set_defaults(func=cmd_vote)

    board = sub.add_parser("leaderboard", help="models ranked per task from your votes")
    board.add_argument("--task", help="one task (text, asr, vision, ...); all when omitted")
    board.add_argument("--json", action="store_true")
    board.set_defaults(func=cmd_leaderboard)


def _model_ids(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def cmd_eval(args, settings: Settings) -> int:
    from assistant.evaluation import runs
    from assistant.evaluation.engine import evaluate
    from assistant.evaluation.report import print_eval, print_side_by_side
    from assistant.flow.service import Assistant

    models = _model_ids(args.models)
    earlier = runs.load(settings.home, args.against) if args.against else None  # before any run
    assistant = Assistant.from_settings(settings, progress=progress)

    def each_item(done: int, total: int, item) -> None:
        mark = "failed" if item.status != "ok" else item.note or f"score {item.score:.2f}"
        progress(f"  [{done}/{total}] {item.model} · {item.id}: {mark}")

    report = evaluate(assistant, Path(args.dataset), models, args.metric, each_item, args.judge)
    diff = runs.side_by_side(earlier, report) if earlier else None
    if args.json:
        shown = report | {"against": diff} if diff else report
        print(json.dumps(shown, ensure_ascii=False, indent=1))
        return 0
    print_eval(report)
    if diff:
        print_side_by_side(diff)
    return 0


def cmd_compare(args, settings: Settings) -> int:
    from assistant.evaluation.compare import compare
    from assistant.flow.service import Assistant

    attachments = existing_files(args.attach)
    models = _model_ids(args.models)
    assistant = Assistant.from_settings(settings, progress=progress)
    report = compare(assistant, args.text, models, attachments, user=args.user)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    for n, column in enumerate(report["columns"]):
        label = f"Model {'ABCD'[n]}" if args.blind else column["model"]
        t = column["timings"]
        first = f"first {t['first_s']:.2f}s · " if t["first_s"] is not None else ""
        cost = column["cost"] or {}
        money = f" · ${cost.get('usd_local', 0):.6f} here" if cost else ""
        print(f"── {label} · {first}total {t['total_s']:.2f}s {column['speed']}{money}")
        print(column["output"] if column["status"] == "ok" else f"⚠️ {column['error']}")
        print()
    if len(models) == 2:
        print(f"Vote: python -m assistant vote {report['id']} a|b|tie|both_bad")
    return 0


def cmd_vote(args, settings: Settings) -> int:
    from assistant.database import open_database
    from assistant.evaluation.compare import saved_compare
    from assistant.evaluation.votes import Votes

    report = saved_compare(settings.home, args.id)
    columns = report["columns"]
    if len(columns) != 2:
        raise BadInput(f"Votes compare two models; that comparison had {len(columns)}.")
    a, b = columns[0]["model"], columns[1]["model"]
    Votes(open_database(settings.database_url, settings.home / "votes.sqlite")).record(
        columns[0]["task"], a, b, args.outcome, args.user, report["prompt"]
    )
    print(f"Recorded: {args.outcome} (A was {a}, B was {b}).")
    return 0


def cmd_leaderboard(args, settings: Settings) -> int:
    from assistant.accounting.ledger import Ledger
    from assistant.database import open_database
    from assistant.evaluation.votes import Votes, leaderboard

    settings.ensure_home()
    ledger = Ledger(open_database(settings.database_url, settings.ledger_path))
    votes = Votes(open_database(settings.database_url, settings.home / "votes.sqlite"))
    board = leaderboard(votes, ledger, args.task)
    if args.json:
        print(json.dumps(board, ensure_ascii=False, indent=1))
        return 0
    if not board:
        print("No votes yet: compare two models with `compare TEXT --models A,B`, then `vote`.")
        return 0
    print(
        f"{'task':<10} {'#':>2} {'model':<40} {'rating':>6} {'95% interval':>14} {'votes':>5} "
        f"{'p50 s':>6}"
    )
    for r in board:
        p50 = f"{r['run_s_p50']:.2f}" if "run_s_p50" in r else "–"
        print(
            f"{r['task']:<10} {r['rank']:>2} {r['model']:<40} {r['rating']:>6} "
            f"{r['low']:>6}–{r['high']:<7} {r['votes']:>5} {p50:>6}"
        )
    return 0
