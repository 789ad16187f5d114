"""Which text model does grounded work: answers from documents, a picture's readers, a memo.

A small chat model is fast but answers from given text poorly; a stronger
one (ASSISTANT_GROUNDED_MODEL) takes those steps when it can run here, and
the route card quotes its measured quality and what it typically costs.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from assistant.flow.context import Context
from assistant.routing.router import RouteDecision
from models.base import Request

# Measured quality of each text model on grounded work, quoted on the route card
# (written from `python -m assistant bench answers`; see the file's "_about").
MEASURED = Path(__file__).parent.parent / "routing" / "router_data" / "answers_measured.json"


def grounded_model(a: Context) -> tuple[str, str] | None:
    """(the model for grounded work and follow-ups, why), or None: the chat model does it.

    The first of ASSISTANT_GROUNDED_MODEL that can run here; the reason
    quotes its measured quality against the chat model's and its cost.
    """
    weights = a.settings.weights_dir
    default = a.catalog.default_for("text", a.settings.text_model)
    for model_id in a.settings.grounded_model:
        entry = a.catalog.entries.get(model_id)
        if entry is None or "text" not in entry.tasks or not entry.availability(weights)[0]:
            continue
        if default is not None and entry.id == default.id:
            return None
        return (
            entry.id,
            f"{entry.id}{_quality(entry.id, default.id if default else '')}{_typical(a, entry.id)}",
        )
    return None


def is_stronger(a: Context, model_id: str) -> bool:
    """Is ``model_id`` one of the stronger grounded models, not the chat model?

    A comparison only: the decision that chose it already checked that it
    can run here, so its weights are not looked up on disk a second time.
    """
    default = a.catalog.default_for("text", a.settings.text_model)
    return model_id in a.settings.grounded_model and (default is None or model_id != default.id)


def grounded_decision(
    a: Context, request: Request, why: str, routed: RouteDecision | None = None
) -> RouteDecision:
    """The text step of a grounded chain: the person's pick, else the stronger model."""
    picked = dict(request.prefer).get("text") or request.model
    if routed is not None and (
        picked or routed.model != a.catalog.default_for("text", a.router.preferred.get("text")).id
    ):
        return replace(routed, reason=f"{why} → {routed.reason}")
    # A text model a person chose after an eval answers grounded work too.
    stronger = None if picked or "text" in a.router.because else grounded_model(a)
    if stronger:
        return RouteDecision(
            "text",
            stronger[0],
            f"{why} → {stronger[1]}",
            1.0,
            routed.alternatives if routed else (),
        )
    entry = a.catalog.default_for("text", picked or a.router.preferred.get("text"))
    return RouteDecision("text", entry.id, f"{why} → {entry.id}", 1.0)


def _typical(a: Context, model_id: str) -> str:
    usd, runs = a.ledger.typical_cost(model_id, "text")
    said = f"{runs} answer" + ("" if runs == 1 else "s")
    return f"; typically ${usd:.6f} an answer here ({said})" if usd else ""


def _quality(model_id: str, default_id: str) -> str:
    """ " (grounded answers right 0.91 vs 0.40 for smollm2…, bench answers)", when measured."""
    try:
        measured = json.loads(MEASURED.read_text())["models"]
    except (OSError, ValueError, KeyError):
        return ""

    def score(i: str):
        return (measured.get(i) or measured.get(i.removesuffix("-llamacpp")) or {}).get("grounded")

    mine, theirs = score(model_id), score(default_id)
    if mine is None:
        return ""
    versus = f" vs {theirs:.2f} for {default_id}" if theirs is not None else ""
    return f" (grounded answers right {mine:.2f}{versus} in `bench answers`)"
