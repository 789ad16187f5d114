"""Command line: serve | ask | chats | models | ledger | migrate | prepare | ingest | documents |
bench | eval | compare | vote | leaderboard | tune | train | space.

    python -m assistant ask "What is the capital of France?" --json
    python -m assistant models --json
    python -m assistant ledger --csv

Exit codes: 0 ok, 1 the request failed or was refused, 2 bad input/usage.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from assistant.knowledge.rag import collections_for
from assistant.settings import Settings
from models.base import AssistantError, BadInput, Progress, Request


def _progress(message: str) -> None:
    # Progress goes to stderr so that --json output on stdout stays parseable.
    print(message, file=sys.stderr, flush=True)


def cmd_ask(args, settings: Settings) -> int:
    from assistant.flow.outcome import Outcome
    from assistant.flow.service import Assistant

    attachments = []
    for name in args.attach:
        path = Path(name)
        if not path.is_file():
            raise BadInput(f"Attachment not found: {name}. Give the path of an existing file.")
        attachments.append(path)
    # "-" reads the message from stdin: long texts do not fit in argv.
    text = sys.stdin.read() if args.text == "-" else args.text
    request = Request(
        text=text,
        attachments=tuple(attachments),
        model=args.model,
        max_new_tokens=args.max_new_tokens,
        speak=args.speak,
        user=args.user,
    )
    assistant = Assistant.from_settings(settings, progress=_progress)
    chat_id = None
    if args.chat:
        # A saved conversation (the UI's sidebar, or an earlier `ask --chat`) goes on:
        # the model reads its earlier turns, and this exchange is added to it.
        chats = assistant.chats
        chat_id = chats.create(args.user) if args.chat == "new" else args.chat
        request = replace(
            request,
            history=chats.history(args.user, chat_id),
            session_id=f"chat-{chat_id}",
            prompt=(("chat", chat_id),),
        )
        if args.chat == "new":
            _progress(f"New chat {chat_id}: continue it with --chat {chat_id}")
    if args.route_only:
        checked = assistant.check(request)
        print(json.dumps(assistant.router.route(checked).as_dict(), ensure_ascii=False, indent=1))
        return 0
    outcome = None
    for item in assistant.handle(request, source="cli"):
        if isinstance(item, Outcome):
            outcome = item
        elif isinstance(item, Progress):
            if item.done == item.total or item.done % 5 == 0:
                _progress(f"  {item.what} {item.done}/{item.total}")
        elif not args.json:
            print(item, end="", flush=True)
    assert outcome is not None
    if chat_id is not None:
        _save_exchange(assistant, args.user, chat_id, request, outcome)
    if args.json:
        out = outcome.as_json()
        if chat_id is not None:
            out["chat_id"] = chat_id
        print(json.dumps(out, ensure_ascii=False, indent=1))
    elif outcome.status == "ok":
        print()
        route = outcome.route
        _progress(
            f"[{route.model} · {route.task} · {route.reason} · "
            f"load {outcome.load_s:.2f}s run {outcome.run_s:.2f}s]"
        )
    else:
        print(outcome.error, file=sys.stderr)
    if outcome.status == "ok":
        return 0
    return 2 if outcome.error_type == "BadInput" else 1


def _save_exchange(assistant, user: str, chat_id: str, request: Request, outcome) -> None:
    """The question and its reply, saved as the UI saves them (the reply with its route)."""
    chats = assistant.chats
    chats.add(
        user,
        chat_id,
        "user",
        request.text,
        {"files": [p.name for p in request.attachments], "chat": chat_id},
    )
    meta = {"status": outcome.status, "request_id": outcome.request_id}
    if outcome.route:
        meta.update(model=outcome.route.model, reason=outcome.route.reason)
    text = outcome.result.text if outcome.result else ""
    if outcome.status != "ok":
        text = f"{text}\n\n⚠️ {outcome.error}".strip()
    chats.add(user, chat_id, "assistant", text, meta)


def cmd_chats(args, settings: Settings) -> int:
    """The saved chats, newest first: their ids are what `ask --chat ID` continues."""
    from assistant.chats.conversations import Chats
    from assistant.database import open_database

    settings.ensure_home()
    chats = Chats(open_database(settings.database_url, settings.chats_path)).list(args.user)
    if args.json:
        print(json.dumps([c.__dict__ for c in chats], ensure_ascii=False, indent=1))
        return 0
    for c in chats:
        print(f"{c.id}  {time.strftime('%Y-%m-%d %H:%M', time.localtime(c.updated))}  {c.title}")
    return 0


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
        from assistant.web.ui.render import units_text, usd

        line = "{:<19}  {:<8}  {:<8}  {:<26}  {:>7}  {:>9}  {:>9}  {}"
        print(
            line.format(
                "started",
                "status",
                "task",
                "model",
                "run s",
                "$ here",
                "$ cloud",
                "what was counted",
            )
        )
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
    return 0


def cmd_migrate(args, settings: Settings) -> int:
    """Bring the ledger's, chats' and votes' schema to this version's, every replica stopped.

    Replicas upgrade an SQLite file by themselves; a shared database only
    here, since a replica still on the old code could be writing to it.
    """
    from assistant.accounting import ledger
    from assistant.chats import conversations
    from assistant.database import open_database
    from assistant.evaluation import votes

    settings.ensure_home()
    stores = (
        (ledger, settings.ledger_path),
        (conversations, settings.chats_path),
        (votes, settings.home / "votes.sqlite"),
    )
    for store, path in stores:
        db = open_database(settings.database_url, path)
        before = db.migrate(store.MIGRATIONS, store.VERSION_TABLE, upgrade=True)
        after = len(store.MIGRATIONS)
        change = f"from {before} to {after}" if before != after else f"{after}, already"
        print(f"{store.VERSION_TABLE} in {db.where}: schema version {change}.")
        db.close()
    return 0


def cmd_prepare(args, settings: Settings) -> int:
    """Prepare every installed pack once, so the first request is fast."""
    from assistant.catalog.backends import prepare_weights
    from assistant.catalog.entries import Catalog
    from models.packs import is_installed

    settings.ensure_home()
    for entry in Catalog.load().entries.values():
        if entry.built and entry.pack is not None and is_installed(entry.pack):
            prepare_weights(entry, settings, progress=_progress)
    return 0


def cmd_serve(args, settings: Settings) -> int:
    from assistant.web.server import serve

    try:
        serve(settings)
    except KeyboardInterrupt:  # Ctrl-C while the models and the app were still being set up
        print("Stopped.", file=sys.stderr)
    return 0


def cmd_bench(args, settings: Settings) -> int:
    # The benches live beside the product (bench/ in the repository), not in
    # it: a Space export or a copy of assistant/ alone has none to run.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        from bench import runner as bench
    except ModuleNotFoundError as exc:
        print(f"No benches here ({exc}): run this from a clone of the repository.", file=sys.stderr)
        return 2

    settings.ensure_home()
    names = [args.name] if args.name else list(bench.DEFAULT)
    # Only `bench load` takes the load's shape; the others measure fixed sets.
    options = {"users": args.users, "seconds": args.seconds, "bursts": args.burst}
    failed = False
    for name in names:
        _progress(f"bench {name}:")
        report = bench.run(
            name, repeats=args.repeats, progress=_progress, **(options if name == "load" else {})
        )
        failed |= any(m["met"] is False for m in report["metrics"])
        if args.json:
            print(json.dumps(report, indent=1))
            continue
        for m in report["metrics"]:
            goal = f"goal {m['goal']}: {'met' if m['met'] else 'NOT met'}" if m["goal"] else ""
            print(f"  {m['name']:<52} {m['value']:>10.3f} {m['unit']:<14} {goal}")
    return 1 if failed else 0


def cmd_ingest(args, settings: Settings) -> int:
    """Index files into the user's collection (or the shared one); one line or object each."""
    from assistant.flow.service import Assistant

    assistant = Assistant.from_settings(settings, progress=_progress)
    worst = 0
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        if abs(fraction - last[0]) >= 0.1 or fraction >= 1.0:  # every 10%, not every batch
            last[0] = fraction
            _progress(f"  {fraction:4.0%} {message}")

    for name in args.paths:
        last[0] = 0.0

        outcome = assistant.ingest(
            Path(name), user=args.user, shared=args.shared, progress=progress
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

    assistant = Assistant.from_settings(settings, progress=_progress)
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


def cmd_train(args, settings: Settings) -> int:
    from training.train_demo import OUT, evaluate, train

    out = args.out or OUT
    train(args.minutes, out, resume=args.resume, peak_lr=args.lr)
    evaluate(out)  # judged on held-out prompts: printed as JSON
    return 0


def cmd_eval(args, settings: Settings) -> int:
    from assistant.evaluation import runs
    from assistant.evaluation.engine import evaluate
    from assistant.evaluation.report import print_eval, print_side_by_side
    from assistant.flow.service import Assistant

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    earlier = runs.load(settings.home, args.against) if args.against else None  # before any run
    assistant = Assistant.from_settings(settings, progress=_progress)

    def progress(done: int, total: int, item) -> None:
        mark = "failed" if item.status != "ok" else item.note or f"score {item.score:.2f}"
        _progress(f"  [{done}/{total}] {item.model} · {item.id}: {mark}")

    report = evaluate(assistant, Path(args.dataset), models, args.metric, progress, args.judge)
    diff = runs.side_by_side(earlier, report) if earlier else None
    if args.json:
        print(
            json.dumps(report | {"against": diff} if diff else report, ensure_ascii=False, indent=1)
        )
        return 0
    print_eval(report)
    if diff:
        print_side_by_side(diff)
    return 0


def cmd_compare(args, settings: Settings) -> int:
    from assistant.evaluation.compare import compare
    from assistant.flow.service import Assistant

    attachments = [Path(a) for a in args.attach]
    for path in attachments:
        if not path.is_file():
            raise BadInput(f"Attachment not found: {path}. Give the path of an existing file.")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    assistant = Assistant.from_settings(settings, progress=_progress)
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


def cmd_tune(args, settings: Settings) -> int:
    from assistant.flow.service import Assistant
    from assistant.tuning import tune

    assistant = Assistant.from_settings(settings, progress=_progress)

    def progress(step) -> None:
        if isinstance(step, str):
            _progress(f"  {step}")
        elif step.step == step.total or step.step % 2 == 0:
            _progress(
                f"  step {step.step}/{step.total} · epoch {step.epoch} · loss {step.loss:.3f}"
                f" · {step.elapsed_s:.0f}s, ~{step.eta_s:.0f}s left"
            )

    card = tune(
        assistant, Path(args.data), args.base, args.name, args.method, args.epochs, progress
    )
    if args.json:
        print(json.dumps(card, ensure_ascii=False, indent=1))
        return 0
    t = card["training"]
    print(
        f"Trained {card['id']} from {card['base']} ({card['method']}, {card['data']['train']} "
        f"examples, {t['steps']} steps) in {t['seconds']:.0f}s: {t['seconds_per_step']:.2f} s "
        f"per step, {t['tokens_per_s']:.0f} tokens/s."
    )
    print(f"Validation loss {t['val_loss_before']:.3f} → {t['val_loss_after']:.3f}.")
    for m in card["eval"]["models"]:
        print(
            f"  {m['model']:<40} {card['eval']['metric']} {m['score']:.2f} on {m['n']} "
            "held-back examples"
        )
    c = card["cost"]
    cloud = f"${c['usd_cloud']:.4f}" if c["usd_cloud"] is not None else "–"
    print(
        f"Cost: ${c['usd_local']:.5f} here ({c['device_seconds']:.0f} device-seconds) vs "
        f"{cloud} for a hosted fine-tuning job ({c['cloud_ref']})."
    )
    print(f'Serving now: python -m assistant ask "..." --model {card["id"]}')
    return 0


def cmd_space(args, settings: Settings) -> int:
    from assistant.web.space import export

    folder = export(args.dir)
    print(
        f"Wrote the Space to {folder}. Push it: cd {folder} && git init && git add . && "
        "git commit -m space && git push https://huggingface.co/spaces/<you>/<name> main"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m assistant",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="run one request through the router")
    ask.add_argument("text", help='the message; "-" reads it from stdin')
    ask.add_argument("--attach", action="append", default=[], metavar="FILE")
    ask.add_argument("--model", help="catalog id that overrides the router")
    ask.add_argument("--json", action="store_true", help="print the contract's JSON")
    ask.add_argument("--route-only", action="store_true", help="print the route, run nothing")
    ask.add_argument("--max-new-tokens", type=int, default=256)
    ask.add_argument("--user", default="local", help="whose documents are searched")
    ask.add_argument(
        "--chat",
        metavar="ID",
        help="continue a saved chat (its id from `chats`); 'new' starts one and prints its id",
    )
    ask.add_argument(
        "--speak",
        action="store_true",
        help="also read the answer aloud to a WAV (optional Piper extra)",
    )
    ask.set_defaults(func=cmd_ask)

    chats = sub.add_parser("chats", help="list saved chats (ids for ask --chat)")
    chats.add_argument("--user", default="local")
    chats.add_argument("--json", action="store_true")
    chats.set_defaults(func=cmd_chats)

    models = sub.add_parser("models", help="list the catalog")
    models.add_argument("--json", action="store_true")
    models.add_argument(
        "--check",
        action="store_true",
        help="health-check remote endpoints first (GET /models: up, right shape, model listed)",
    )
    models.set_defaults(func=cmd_models)

    ledger = sub.add_parser("ledger", help="export the request ledger")
    ledger.add_argument("--json", action="store_true")
    ledger.add_argument("--csv", action="store_true")
    ledger.add_argument("--limit", type=int)
    ledger.set_defaults(func=cmd_ledger)

    sub.add_parser(
        "migrate", help="upgrade the shared database's schema (every replica stopped)"
    ).set_defaults(func=cmd_migrate)
    sub.add_parser("prepare", help="prepare packed weights once").set_defaults(func=cmd_prepare)
    sub.add_parser("serve", help="serve the web app").set_defaults(func=cmd_serve)
    bench = sub.add_parser(
        "bench",
        help="measure side by side: asr, text, rag, router, vision, image, pool, scale, load",
    )
    bench.add_argument("name", nargs="?", help="one bench; all when omitted")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--repeats", type=int, default=3, help="runs per contender (median)")
    bench.add_argument("--users", type=int, default=16, help="load: simulated users at once")
    bench.add_argument("--seconds", type=float, default=180.0, help="load: length of a phase")
    bench.add_argument("--burst", type=int, default=100, help="load: requests sent at once")
    bench.set_defaults(func=cmd_bench)

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

    train = sub.add_parser("train", help="train the demo text-to-image model on the CPU")
    train.add_argument("what", choices=["demo-diffusion"])
    train.add_argument("--minutes", type=float, default=30.0, help="wall-clock training budget")
    train.add_argument("--out", type=Path, help="where to save (default: models/demo_diffusion)")
    train.add_argument("--resume", type=Path, help="a saved model folder to go on training")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay)")
    train.set_defaults(func=cmd_train)

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

    tn = sub.add_parser("tune", help="fine-tune a text model on your examples, then serve it")
    tn.add_argument("data", help='JSONL of {"messages": [...]} or CSV of prompt,completion')
    tn.add_argument("--base", required=True, help="the catalog id to start from")
    tn.add_argument("--name", required=True, help="the new model's catalog id")
    tn.add_argument("--method", choices=["lora", "full"], default="lora")
    tn.add_argument("--epochs", type=int, default=3)
    tn.add_argument("--json", action="store_true")
    tn.set_defaults(func=cmd_tune)

    space = sub.add_parser("space", help="Hugging Face Spaces: export the folder to push")
    space.add_argument("action", choices=["export"])
    space.add_argument("dir", type=Path, help="a new (or empty) folder")
    space.set_defaults(func=cmd_space)
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


if __name__ == "__main__":
    sys.exit(main())
