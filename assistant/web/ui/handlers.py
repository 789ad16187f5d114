"""The chat's events: send a message (respond), ask the last one again (rerun), and
what Stop leaves behind (mark_stopped).

Each handler yields a ChatUpdate, named by component: what a step leaves alone stays
``gr.skip()``, so no handler counts positions in a tuple. ``with_request`` turns it
into the tuple Gradio wants, in ``ChatUpdate.OUTPUTS`` order.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.catalog.entries import TASKS
from assistant.chats.turns import PreparedTurn, prepare_turn, save_question, save_reply
from assistant.flow.outcome import Outcome
from assistant.flow.pool import Loading, loading_text
from assistant.flow.service import Assistant
from assistant.web.access import check_files
from assistant.web.space import gpu
from assistant.web.ui.chats import NO_TEMPLATE
from assistant.web.ui.documents import user_of
from assistant.web.ui.format import (
    SIZE_DEFAULT,
    WAITING,
    answers_in,
    fold_answers,
    number_answer,
    panel_rows,
    picture_options,
    progress_bar,
    resident_text,
    saved_reply,
    text_of,
    with_stopped_note,
)
from assistant.web.ui.layout import AUTO, KEEP, ONCE
from assistant.web.ui.render import reply_messages, safe_markdown
from models.base import BadInput, PictureOptions, Progress, Request


@dataclass(frozen=True)
class ChatUpdate:
    """One step of a chat event: the new value of each component it changes."""

    OUTPUTS = ("box", "chat", "panel", "resident", "chat_id", "listing")  # the wiring's order

    box: Any = field(default_factory=gr.skip)
    chat: Any = field(default_factory=gr.skip)
    panel: Any = field(default_factory=gr.skip)
    resident: Any = field(default_factory=gr.skip)
    chat_id: Any = field(default_factory=gr.skip)
    listing: Any = field(default_factory=gr.skip)

    def as_outputs(self) -> tuple:
        return tuple(getattr(self, name) for name in self.OUTPUTS)


def with_request(handler):
    """``handler`` as a Gradio event that is given the request.

    Gradio fills a ``gr.Request`` parameter only among the leading
    positional ones; the chat handlers take the model pickers as ``*picks``,
    after which their ``request`` was never filled: every chat ran as user
    "local" in session "anonymous". This puts the request first, and gives
    Gradio each ChatUpdate as the tuple of its outputs.
    """

    def event(request: gr.Request, *inputs):
        updates = handler(*inputs, request=request)
        try:
            for update in updates:
                yield update.as_outputs() if isinstance(update, ChatUpdate) else update
        finally:
            # Stop closes this generator: close the handler's now (as `yield from` did), so
            # its own cleanup (cancel the model, save the partial reply) runs at once.
            updates.close()

    # Not functools.wraps: Gradio would read the wrapped signature and fill nothing.
    event.__name__, event.handler = handler.__name__, handler
    return event


@dataclass(frozen=True)
class PictureControls:
    """The picture panel's values, as the events receive them."""

    steps: float | None = None
    guidance: float | None = None
    seed: float = -1
    size: str = SIZE_DEFAULT
    negative: str = ""
    strength: float = 0.6

    def options(self) -> PictureOptions:
        return picture_options(
            self.steps, self.guidance, self.seed, self.size, self.negative, self.strength
        )


class ChatHandlers:
    """The chat tab's events for one Assistant."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant
        self.speech_ok = tts_available(assistant)
        # On ZeroGPU hardware a GPU is attached only inside this wrapper (a no-op elsewhere).
        self.handle = gpu(assistant.handle)
        self.pickable = pickable_tasks(assistant)

    # Gradio passes the inputs positionally, in the wiring's order (app.py).
    def respond(
        self,
        message: dict | None,
        chat: list[dict] | None,
        chat_id: str | None = None,
        speak: bool = False,
        system: str = "",
        template: str = NO_TEMPLATE,
        variables: str = "",
        steps: float | None = None,
        guidance: float | None = None,
        seed: float = -1,
        size: str = SIZE_DEFAULT,
        negative: str = "",
        strength: float = 0.6,
        keep: str = ONCE,
        *picks: str,
        request: gr.Request = None,
        again: bool = False,
    ):
        """Send a message: saved, shown at once, streamed, then badged and accounted.

        ``again``: a re-run of the chat's last question, which is saved already.
        """
        session_id = (request.session_hash if request else None) or "anonymous"
        user = user_of(request)
        message = message or {}
        chat = list(chat or [])
        text = message.get("text") or ""
        files = [Path(f if isinstance(f, str) else f["path"]) for f in message.get("files") or []]
        try:
            # Whatever path a client sent: only this browser's own uploads (access.py).
            check_files(self.assistant.settings, request, files)
            turn = prepare_turn(
                self.assistant.chats,
                self.assistant.templates(),
                user,
                chat_id,
                text,
                system,
                None if template == NO_TEMPLATE else template,
                variables,
                again,
            )
        except BadInput as err:
            # Nothing is lost: the message goes back into the box to fix and resend.
            gr.Warning(str(err))
            yield ChatUpdate(box=gr.MultimodalTextbox(value=message), chat=chat, chat_id=chat_id)
            return
        yield self._shown(chat, turn, user, text, files, save=not again)
        picture = PictureControls(steps, guidance, seed, size, negative, strength)
        req = self._request(turn, files, session_id, user, speak, picture, picks)
        req = replace(req, keep_attachments=keep == KEEP)
        yield from self._stream(req, chat, turn.chat_id, user)

    def _shown(self, chat: list[dict], turn: PreparedTurn, user: str, text: str, files, save):
        """The message in the chat (and saved), with a waiting line where the reply will come."""
        for path in files:
            chat.append({"role": "user", "content": {"path": str(path)}})
        if text.strip():
            chat.append({"role": "user", "content": text})
        # Words at once, not an empty bubble: a model's first use loads it first.
        chat.append({"role": "assistant", "content": WAITING})
        if save:
            save_question(self.assistant.chats, user, turn, text, files)
        return ChatUpdate(
            box=gr.MultimodalTextbox(value=None, interactive=False),
            chat=chat,
            chat_id=turn.chat_id,
            listing=chat_list(self.assistant, user, turn.chat_id),
        )

    def _request(self, turn, files, session_id, user, speak, picture, picks) -> Request:
        prefer = tuple(
            (t, m) for t, m in zip(self.pickable, picks, strict=False) if m and m != AUTO
        )
        return Request(
            text=turn.text,
            attachments=tuple(files),
            history=turn.history,
            session_id=session_id,
            speak=bool(speak) and self.speech_ok,
            prefer=prefer,
            user=user,
            prompt=turn.prompt,
            options=picture.options(),
        )

    def _stream(self, req: Request, chat: list[dict], chat_id: str, user: str):
        """The reply as it comes, then its badge, the panel and what is loaded."""
        assistant = self.assistant
        reply = ""
        outcome = None
        cancel = threading.Event()
        steps = self.handle(req, source="ui", cancel=cancel)
        try:
            for item in steps:
                if isinstance(item, Outcome):
                    outcome = item
                    break
                if isinstance(item, Progress):
                    chat[-1] = {"role": "assistant", "content": progress_bar(item)}
                    yield ChatUpdate(chat=chat)
                    continue
                if isinstance(item, Loading):
                    # Under what came so far (a transcript, before its answer's model).
                    waiting = f"*{loading_text(item)}*"
                    shown = f"{safe_markdown(reply)}\n\n{waiting}" if reply.strip() else waiting
                    chat[-1] = {"role": "assistant", "content": shown}
                    yield ChatUpdate(chat=chat)
                    continue
                reply += item
                chat[-1] = {"role": "assistant", "content": safe_markdown(reply)}
                yield ChatUpdate(chat=chat)
        finally:
            if outcome is None:
                # The Stop button closed this generator: stop the model at its
                # next token, let the ledger finish the row, keep the partial reply.
                cancel.set()
                for item in steps:
                    outcome = item if isinstance(item, Outcome) else outcome
                self._save_reply(user, chat_id, reply.strip(), outcome, stopped=True)
        assert outcome is not None
        cap = min(req.max_new_tokens, assistant.settings.max_new_tokens)
        self._save_reply(user, chat_id, reply.strip(), outcome, cap=cap)
        chat[-1:] = reply_messages(saved_reply(reply.strip(), outcome, cap=cap))
        yield ChatUpdate(
            box=gr.MultimodalTextbox(value=None, interactive=True),
            chat=chat,
            panel=panel_rows(assistant, req.session_id, user),
            resident=resident_text(assistant),
            chat_id=chat_id,
            listing=chat_list(assistant, user, chat_id),
        )

    def _save_reply(self, user, chat_id, text, outcome, stopped=False, cap=0) -> None:
        saved, meta = saved_reply(text, outcome, stopped, cap)
        save_reply(self.assistant.chats, user, chat_id, saved, meta)

    def rerun(self, chat: list[dict] | None, *inputs, request: gr.Request = None):
        """Ask the last message again (with the models picked now); the earlier answers stay,
        folded and numbered, in the chat and in its saved copy.

        ``inputs`` are respond's after the chat: chat id, speak, prompt, picture, keep, picks.
        """
        chat = list(chat or [])
        last = max((i for i, m in enumerate(chat) if m.get("role") == "user"), default=None)
        if last is None:
            yield ChatUpdate(chat=chat)
            return
        first = last
        while first > 0 and chat[first - 1].get("role") == "user":
            first -= 1  # the files sent with the message are user turns too
        message = _message_of(chat[first : last + 1])
        # The earlier answers stay, folded under the question and numbered.
        earlier = fold_answers(chat[last + 1 :])
        saved = bool(inputs and inputs[0])  # the chat id: the question is in the store
        for out in self.respond(message, chat[:first], *inputs, request=request, again=saved):
            shown = out.chat
            if isinstance(shown, list):
                if len(shown) <= last:  # refused before it started: the chat as it was
                    shown = chat
                else:
                    shown = (
                        shown[: last + 1]
                        + earlier
                        + number_answer(shown[last + 1 :], answers_in(earlier) + 1)
                    )
                out = replace(out, chat=shown)
            yield out

    def mark_stopped(self, chat: list[dict] | None, request: gr.Request = None):
        """The stopped reply says so, and its row joins the panel once the ledger has it."""
        assistant = self.assistant
        session_id = (request.session_hash if request else None) or "anonymous"
        chat = with_stopped_note(list(chat or []))
        # The cancelled turn finishes its ledger row a moment after Stop.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            r["status"] == "started" for r in assistant.ledger.rows(session_id, limit=5)
        ):
            time.sleep(0.1)
        return (
            chat,
            panel_rows(assistant, session_id, user_of(request)),
            resident_text(assistant),
        )


def _message_of(turns: list[dict]) -> dict:
    """The message box's value that sent these user turns (its text and its files)."""
    text, files = "", []
    for message in turns:
        content = message["content"]
        parts = content if isinstance(content, list) else [content]
        for part in parts:
            if isinstance(part, dict) and part.get("type") == "file":
                files.append(part["file"]["path"])
            elif isinstance(part, dict) and "path" in part:
                files.append(part["path"])
            else:
                text += text_of(part)
    return {"text": text, "files": files}


def example_message(selected: gr.SelectData) -> dict:
    value = selected.value if isinstance(selected.value, dict) else {"text": str(selected.value)}
    files = [f["path"] if isinstance(f, dict) else f for f in value.get("files") or []]
    return {"text": value.get("text") or "", "files": files}


def chat_list(assistant: Assistant, user: str, selected: str | None) -> gr.Radio:
    items = [(c.title, c.id) for c in assistant.chats.list(user)]
    return gr.Radio(choices=items, value=selected)


def pickable_tasks(assistant: Assistant) -> dict[str, list[tuple[str, str]]]:
    """Route task -> (label, model id) a person may pick (built ones; those that can load
    now first, the others labelled with why they cannot)."""
    weights = assistant.settings.weights_dir
    tasks: dict[str, list[tuple[str, str]]] = {}
    for task in TASKS:
        entries = [
            (e, *e.availability(weights)) for e in assistant.catalog.for_task(task) if e.built
        ]
        entries.sort(key=lambda item: not item[1])
        if entries:
            tasks[task] = [
                (e.id if ok else f"{e.id} — cannot load here ({why})", e.id)
                for e, ok, why in entries
            ]
    return tasks


def tts_available(assistant: Assistant) -> bool:
    entry = assistant.catalog.default_for("tts")
    return entry is not None and entry.availability(assistant.settings.weights_dir)[0]
