"""A request made ready before routing: clean, bounded, and what its words ask for.

Limits and quotas are assistant/accounting/limits.py; this is the request
itself: its text and history cleaned and cut to size.
"""

from __future__ import annotations

import re
from dataclasses import replace

from assistant.chats.conversations import clean_text
from assistant.settings import Settings
from models.base import BadInput, Message, Request

# History beyond this many messages' worth of characters is never tokenized: no
# model here has a context that long, and counting 2,000 turns in tokens (again
# for each turn dropped) held a worker for minutes while everyone waited.
HISTORY_CHARS_PER_MESSAGE = 8

# Words that ask for the transcript itself, so the chain stops after speech.
TRANSCRIBE_ONLY = re.compile(r"transcri|расшифр|транскри|transkryp|转录|转写|听写", re.IGNORECASE)


def with_transcribe_flag(request: Request) -> Request:
    """The request with ``transcribe_only`` set when its words ask for a transcript.

    Decided once, before routing, so the chain reads only the flag, as it does
    for the callers that set it themselves (evals, /v1/audio/transcriptions).
    """
    if request.transcribe_only or not request.attachments:
        return request
    if TRANSCRIBE_ONLY.search(request.text):
        return replace(request, transcribe_only=True)
    return request


def checked(settings: Settings, request: Request) -> Request:
    """Reject what no model should see; return the request with clean text."""
    text = clean_text(request.text)
    if not text.strip() and not request.attachments:
        raise BadInput("Your message is empty. Type a question, or attach a file.")
    limit = settings.max_message_chars
    if len(text) > limit:
        raise BadInput(
            f"Your message is {len(text):,} characters; the limit is {limit:,}. "
            "Shorten it, or upload long text as a document and ask about it."
        )
    # Earlier turns come from a saved chat or an API caller: same cleaning.
    history, dropped = bounded_history(request.history, HISTORY_CHARS_PER_MESSAGE * limit)
    history = tuple(replace(m, content=clean_text(m.content)) for m in history)
    return replace(
        request,
        text=text,
        history=history,
        max_new_tokens=min(request.max_new_tokens, settings.max_new_tokens),
        dropped_turns=request.dropped_turns + dropped,
    )


def bounded_history(
    history: tuple[Message, ...], max_chars: int
) -> tuple[tuple[Message, ...], int]:
    """(the system prompts and the newest turns within ``max_chars``, exchanges left out).

    Cut at a user turn, so roles still alternate; a system prompt is always kept.
    """
    system = [m for m in history if m.role == "system"]
    turns = [m for m in history if m.role != "system"]
    room = max_chars - sum(len(m.content) for m in system)
    start = len(turns)
    while start > 0 and room - len(turns[start - 1].content) >= 0:
        start -= 1
        room -= len(turns[start].content)
    while start < len(turns) and turns[start].role != "user":
        start += 1
    dropped = sum(1 for m in turns[:start] if m.role == "user")
    return tuple(system + turns[start:]), dropped
