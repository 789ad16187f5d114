"""One chat turn's bookkeeping, whatever front end asks: the saved chat a message goes
into (its system prompt and chosen template applied), and saving the question before
the model runs and the reply when it ends.

The UI calls these (assistant/web/ui/handlers.py); they know nothing of Gradio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from assistant.chats.conversations import Chats, Template, apply_template, parse_variables
from models.base import BadInput, Message


@dataclass(frozen=True)
class PreparedTurn:
    chat_id: str
    text: str  # what the model reads: the message, with the template applied
    history: tuple[Message, ...]  # the chat's earlier turns (system prompt, examples first)
    prompt: tuple[tuple[str, str], ...]  # the record kept with the question and its ledger row


def prepare_turn(
    chats: Chats,
    templates: dict[str, Template],
    user: str,
    chat_id: str | None,
    text: str,
    system: str,
    template: str | None,
    variables: str,
    again: bool = False,
) -> PreparedTurn:
    """The turn in its saved chat (a new one when ``chat_id`` is None), the chat's system
    prompt set and ``template`` (an id, or None) applied. Raises BadInput on a bad template.

    ``again``: the chat's last question asked once more (a re-run): the model reads
    what came before that question, not the question and its earlier answer.
    """
    if chat_id is None:
        chat_id = chats.create(user)
    chats.set_system_prompt(user, chat_id, system or "")
    history = chats.history(user, chat_id)
    if again:
        asked = [i for i, m in enumerate(history) if m.role == "user"]
        history = history[: asked[-1]] if asked else history
    prompt = {"chat": chat_id}
    if system and system.strip():
        prompt["system_prompt"] = system.strip()[:500]
    if template:
        chosen = templates.get(template)
        if chosen is None:
            raise BadInput(f"The template '{template}' no longer exists; pick another.")
        text, history = apply_template(chosen, text, parse_variables(variables), history)
        prompt.update(template=chosen.id, shots=chosen.shots)
    return PreparedTurn(chat_id, text, history, tuple(prompt.items()))


def save_question(
    chats: Chats, user: str, turn: PreparedTurn, text: str, files: list[Path]
) -> None:
    """The message as typed, saved before the model runs: a crash or a Stop never loses it.
    The paths too, so a reopened chat shows the pictures and recordings again."""
    chats.add(
        user,
        turn.chat_id,
        "user",
        text,
        {"files": [p.name for p in files], "paths": [str(p) for p in files], **dict(turn.prompt)},
    )


def save_reply(chats: Chats, user: str, chat_id: str, text: str, meta: dict) -> None:
    """The reply with what its bubble shows (``meta``), unless the chat was deleted meanwhile."""
    try:
        chats.add(user, chat_id, "assistant", text, meta)
    except BadInput:
        pass  # the chat was deleted while the reply was running


def export_file(chats: Chats, folder: Path, user: str, chat_id: str, kind: str) -> Path:
    """The chat written as Markdown or JSON (``kind``) into ``folder``; its path."""
    text = chats.export(user, chat_id, kind)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"chat-{chat_id}.{kind}"
    path.write_text(text, encoding="utf-8")
    return path
