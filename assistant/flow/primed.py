"""How a plain chat's prompt is shaped: a lone question primed, a follow-up told to use the turns.

A first question to the default chat model is shown three short exchanges first (few-shot).

SmolLM2-135M answers a lone question with a ramble that often starts wrong
("L'Étoile, la Marseillaise. Paris is…", "Il Corfu"); shown first how a
short, direct answer looks, it gets more right and stops sooner. Measured
(2026-12-03, greedy, first sentence judged) on bench answers' 24 factual
questions and the eval's other 24 (assistant/evaluation/examples/facts.jsonl):
16 and 16 right without, 18 and 21 with these three exchanges, and a median
reply ~1.5x quicker (a short reply is fewer tokens). Other pairs scored 17/20
and 16/20: a 135M model is sensitive to which examples it sees, never worse
than without. The exchanges are general (a greeting, a capital, an inventor),
asked by no bench; a "how many" example was dropped because the model copied
it ("How many days are in a week?" → "A triangle has 3 sides").

Only the first turn of a plain chat with the default chat model is primed:
a conversation already shows the model how it answers, a chat's own system
prompt says what the person wants, grounded steps have their instructions,
and a model picked by name (an eval, a tuned model taught a format) is
measured as it is.

A follow-up routed to the stronger model (ASSISTANT_GROUNDED_MODEL) is told
to answer in a sentence or two and to read "it", "there" and "the same"
from the earlier turns. On bench answers' 14 follow-ups (first turns from
the primed chat model) it scored the same as without (7/8 own, 5/6
held-out) with a median reply of 8.4 s instead of 13.9 s on a loaded
machine, and answers as the assistant ("You were born in 1990") where it
had spoken as the user ("I was born in 1990").
"""

from __future__ import annotations

from dataclasses import replace

from assistant.flow.context import Context
from assistant.flow.grounded import grounded_model
from assistant.knowledge.grounding import with_system
from assistant.routing.router import RouteDecision
from models.base import Message, Request

EXAMPLES = (
    Message("user", "Hi there!"),
    Message("assistant", "Hello! How can I help you today?"),
    Message("user", "What is the capital of Canada?"),
    Message("assistant", "The capital of Canada is Ottawa."),
    Message("user", "Who invented the telephone?"),
    Message("assistant", "Alexander Graham Bell invented the telephone."),
)


FOLLOW_UP_SYSTEM = (
    "Answer the user's last message in one or two short sentences. Use the earlier "
    "conversation to tell what words like it, there, that or the same refer to."
)


def primed(a: Context, request: Request, decision: RouteDecision) -> Request:
    """``request`` shaped for the model that will read it (see the module's doc)."""
    if decision.task != "text" or request.model:
        return request
    if any(m.role == "assistant" for m in request.history):
        stronger = grounded_model(a)
        if stronger and decision.model == stronger[0]:
            return replace(request, history=with_system(FOLLOW_UP_SYSTEM, request.history))
        return request
    if request.history:
        return request
    default = a.catalog.default_for("text", a.router.preferred.get("text"))
    if default is None or decision.model != default.id:
        return request
    return replace(request, history=EXAMPLES)
