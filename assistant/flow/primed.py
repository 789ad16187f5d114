"""A first question to the default chat model, shown three short exchanges first (few-shot).

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
"""

from __future__ import annotations

from dataclasses import replace

from assistant.flow.context import Context
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


def primed(a: Context, request: Request, decision: RouteDecision) -> Request:
    """``request`` with the example exchanges before it, when it is a lone plain question."""
    if decision.task != "text" or request.history or request.model:
        return request
    default = a.catalog.default_for("text", a.router.preferred.get("text"))
    if default is None or decision.model != default.id:
        return request
    return replace(request, history=EXAMPLES)
