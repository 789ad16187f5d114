"""What a finished request was: the Outcome type, the CLI's --json contract.

Kept apart from the flow so that readers of the contract
(the UI, the CLI, the API, tests) find it in one short file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from assistant.accounting.costs import Cost
from assistant.routing.router import RouteDecision
from models.base import AssistantError, Result


@dataclass(frozen=True)
class Outcome:
    """Everything known about a finished request; the CLI's --json contract."""

    request_id: str
    route: RouteDecision | None  # None when the request was rejected before routing
    result: Result | None
    status: str  # "ok" | "error" | "refused"
    error: str | None = None  # the user-facing message when status is not ok
    queue_s: float = 0.0
    load_s: float = 0.0
    run_s: float = 0.0
    device: str = "cpu"
    evicted: tuple[str, ...] = field(default=())
    error_type: str | None = None  # BadInput | ModelUnavailable | ... (for exit codes, HTTP codes)
    steps: tuple[Outcome, ...] = ()  # the chained steps, when there were more than one
    cost: Cost | None = None  # None when nothing ran (rejected before routing)

    def as_json(self) -> dict:
        route = self.route.as_dict() if self.route else None
        result = self.result or Result()
        output: dict = {"text": result.text, "files": [str(f) for f in result.files]}
        if result.segments:
            output["segments"] = list(result.segments)
            output["language"] = result.language
        if result.citations:
            output["citations"] = list(result.citations)
        if result.notes:
            output["notes"] = list(result.notes)
        return {
            "request_id": self.request_id,
            "route": route,
            "steps": [_step_json(s) for s in self.steps]
            if self.steps
            else ([_step_json(self)] if route else []),
            "output": output,
            "usage": {
                "units_in": result.usage.units_in,
                "units_out": result.usage.units_out,
                "unit": result.usage.unit,
            },
            "timings": {"queue_s": self.queue_s, "load_s": self.load_s, "run_s": self.run_s},
            "cost": self.cost.as_dict() if self.cost else None,
            "status": self.status,
            "error": self.error,
        }


def rejected(
    request_id: str, err: AssistantError, decision: RouteDecision | None = None
) -> Outcome:
    """A request refused before any model ran: its message and status, no result, no cost.

    ``decision`` is the route when the refusal came after routing (a budget).
    """
    return Outcome(request_id, decision, None, err.status, str(err), error_type=type(err).__name__)


def _step_json(step: Outcome) -> dict:
    """One chained step: its route, plus which ledger row it is and how it went."""
    route = step.route.as_dict() if step.route else {"task": None, "model": None}
    timings = {"queue_s": step.queue_s, "load_s": step.load_s, "run_s": step.run_s}
    usage = step.result.usage if step.result else None
    units = None
    if usage:
        units = {"units_in": usage.units_in, "units_out": usage.units_out, "unit": usage.unit}
    # Each step's own words: the transcript of a recording is the first step's.
    text = step.result.text if step.result else ""
    return {
        **route,
        "request_id": step.request_id,
        "status": step.status,
        "timings": timings,
        "usage": units,
        "text": text,
    }


def chain(first: Outcome, second: Outcome) -> Outcome:
    """The Outcome of speech followed by the routed transcript, as one exchange.

    Speech then its answer, or retrieval then the answer from the excerpts.
    The answer is the second step's; segments and citations are kept;
    times add up, and the first failure decides the status.
    """
    transcript = first.result or Result()
    answer = second.result or Result()
    result = replace(
        answer,
        segments=transcript.segments,
        language=transcript.language,
        citations=answer.citations or transcript.citations,
    )
    return Outcome(
        request_id=first.request_id,
        route=first.route,
        result=result,
        status=second.status,
        error=second.error,
        queue_s=first.queue_s + second.queue_s,
        load_s=first.load_s + second.load_s,
        run_s=first.run_s + second.run_s,
        device=second.device,
        evicted=first.evicted + second.evicted,
        error_type=second.error_type,
        steps=(first.steps or (first,)) + (second.steps or (second,)),
        cost=add_costs(first.cost, second.cost),
    )


def add_costs(a: Cost | None, b: Cost | None) -> Cost | None:
    if a is None or b is None:
        return a or b
    clouds = [c.usd_cloud for c in (a, b) if c.usd_cloud is not None]
    methods = sorted({a.energy_method, b.energy_method})
    return Cost(
        device=b.device,
        device_seconds=round(a.device_seconds + b.device_seconds, 4),
        energy_j=round(a.energy_j + b.energy_j, 3),
        energy_method=" + ".join(methods),
        usd_local=a.usd_local + b.usd_local,
        usd_cloud=sum(clouds) if clouds else None,
        cloud_ref="; ".join(c.cloud_ref for c in (a, b) if c.cloud_ref) or None,
    )
