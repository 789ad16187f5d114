"""`ask` (one request through the router) and `chats` (the saved conversations it can go on)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

from assistant.cli.common import existing_files, progress
from assistant.settings import Settings
from models.base import Progress, Request


def add_commands(sub) -> None:
    ask = sub.add_parser("ask", help="run one request through the router")
    ask.add_argument("text", help='the message; "-" reads it from stdin')
    ask.add_argument("--attach", action="append", default=[], metavar="FILE")
    ask.add_argument(
        "--keep",
        action="store_true",
        help="also add the attached documents to your documents (default: this request only)",
    )
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


def cmd_ask(args, settings: Settings) -> int:
    from assistant.flow.service import Assistant

    attachments = existing_files(args.attach)
    # "-" reads the message from stdin: long texts do not fit in argv.
    text = sys.stdin.read() if args.text == "-" else args.text
    request = Request(
        text=text,
        attachments=tuple(attachments),
        model=args.model,
        max_new_tokens=args.max_new_tokens,
        speak=args.speak,
        user=args.user,
        keep_attachments=args.keep,
    )
    assistant = Assistant.from_settings(settings, progress=progress)
    chat_id = None
    if args.chat:
        request, chat_id = _in_chat(assistant, request, args.chat, args.user)
    if args.route_only:
        checked = assistant.check(request)
        print(json.dumps(assistant.router.route(checked).as_dict(), ensure_ascii=False, indent=1))
        return 0
    outcome = _run(assistant, request, echo=not args.json)
    if chat_id is not None:
        _save_exchange(assistant, args.user, chat_id, request, outcome)
    _report(outcome, chat_id, as_json=args.json)
    if outcome.status == "ok":
        return 0
    return 2 if outcome.error_type == "BadInput" else 1


def _in_chat(assistant, request: Request, chat: str, user: str) -> tuple[Request, str]:
    """The request as the next turn of a saved chat ('new' starts one), and that chat's id.

    A saved conversation (the UI's sidebar, or an earlier `ask --chat`) goes on:
    the model reads its earlier turns, and this exchange is added to it.
    """
    chats = assistant.chats
    chat_id = chats.create(user) if chat == "new" else chat
    request = replace(
        request,
        history=chats.history(user, chat_id),
        session_id=f"chat-{chat_id}",
        prompt=(("chat", chat_id),),
    )
    if chat == "new":
        progress(f"New chat {chat_id}: continue it with --chat {chat_id}")
    return request, chat_id


def _run(assistant, request: Request, echo: bool):
    """The request's Outcome; its text streams to stdout as it comes when ``echo``."""
    from assistant.flow.outcome import Outcome
    from assistant.flow.pool import Loading, loading_text

    outcome = None
    for item in assistant.handle(request, source="cli"):
        if isinstance(item, Outcome):
            outcome = item
        elif isinstance(item, Progress):
            if item.done == item.total or item.done % 5 == 0:
                progress(f"  {item.what} {item.done}/{item.total}")
        elif isinstance(item, Loading):
            progress(loading_text(item))
        elif echo:
            print(item, end="", flush=True)
    assert outcome is not None
    return outcome


def _report(outcome, chat_id: str | None, as_json: bool) -> None:
    if as_json:
        out = outcome.as_json()
        if chat_id is not None:
            out["chat_id"] = chat_id
        print(json.dumps(out, ensure_ascii=False, indent=1))
    elif outcome.status == "ok":
        print()
        route = outcome.route
        progress(
            f"[{route.model} · {route.task} · {route.reason} · "
            f"load {outcome.load_s:.2f}s run {outcome.run_s:.2f}s]"
        )
    else:
        print(outcome.error, file=sys.stderr)


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
