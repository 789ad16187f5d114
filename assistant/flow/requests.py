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

# What a local text model reads in a few seconds, in characters of its whole
# prompt (system prompt, history, the message with its excerpts), counted
# before any tokenizing. The whole prompt is read ("prefilled") before the
# first word of the reply, and a llama.cpp slot or a CTranslate2 batch doing
# that holds the cores the other chats decode on: 400 turns took 93-126 s
# each and a 3-word chat behind them waited 133 s (#17). English is ~4
# characters a token. On the CPU the slowest default text model is the one
# follow-ups go to, Qwen2.5-Coder-0.5B on llama.cpp: ~50-100 prompt tokens/s
# on 2 quiet cores (2026-12-03, with a third of one core on a loaded machine:
# 1,001 tokens in 78 s, 12.9 tok/s); SmolLM2-135M reads several times faster.
# 3,000 characters, ~750 tokens, is ~10 s for Qwen on a quiet machine and a
# few for SmolLM2. A GPU reads these sizes at thousands of tokens/s: 64,000
# characters (~16k tokens) is a few seconds there and within every local
# model's context window. ASSISTANT_PROMPT_CHARS sets one budget for all.
PROMPT_CHARS = {"cpu": 3_000, "gpu": 64_000}

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


def prompt_budget(settings: Settings, device: str) -> int | None:
    """Characters of prompt a text model on ``device`` reads; None: no bound here.

    A remote endpoint spends its own machine's time, within its context window
    (models/remote.py trims to it), so nobody here waits behind its prefill.
    """
    if device.startswith("remote"):
        return None
    return settings.prompt_chars or PROMPT_CHARS["cpu" if device == "cpu" else "gpu"]


def within_prompt_budget(settings: Settings, request: Request, device: str) -> Request:
    """The request with its oldest turns left out until its whole prompt fits the budget.

    The system prompt and the message itself are always kept (the message is
    bounded by ASSISTANT_MAX_MESSAGE_CHARS). The turns left out are added to
    ``dropped_turns``, which the model's note reports ("The N oldest exchanges...").
    """
    budget = prompt_budget(settings, device)
    if budget is None:
        return request
    history, dropped = bounded_history(request.history, budget - len(request.text))
    if history == request.history:
        return request
    return replace(request, history=history, dropped_turns=request.dropped_turns + dropped)


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
