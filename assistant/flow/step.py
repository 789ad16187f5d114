"""One step: lease a model → run it → price the work → write its ledger row.

Every model that runs for a request (an answer, a transcript, retrieval, a
reranking, an index, a spoken reply) runs through :func:`run_step`, so each
is timed, priced and recorded the same way; a chain is steps linked by
parent id. A request refused before any model ran ends in :func:`reject`.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace

from assistant.accounting.costs import EnergyMeter, cost_of
from assistant.accounting.ledger import Finished, Started
from assistant.flow.context import Context
from assistant.flow.outcome import Outcome, rejected
from assistant.flow.pool import Loading
from assistant.flow.requests import within_prompt_budget
from assistant.routing.router import RouteDecision
from models.base import Adapter, AssistantError, Request, Result

# What a step does with its leased model; by default, the model's own stream.
Work = Callable[[Adapter, Request, threading.Event | None], Iterator[str | Result]]


@dataclass(frozen=True)
class _Ran:
    """What happened between the lease and the end of the model's work."""

    decision: RouteDecision  # who served: the fallback's id when the routed model could not start
    result: Result | None
    status: str
    error: str | None
    error_type: str | None
    fallback: dict | None
    queue_s: float
    load_s: float
    run_s: float
    device: str
    evicted: tuple[str, ...]
    joules: float | None  # measured on a GPU; None: estimated from time


def run_step(
    a: Context,
    request_id: str,
    parent_id: str | None,
    request: Request,
    decision: RouteDecision,
    source: str,
    cancel: threading.Event | None,
    work: Work | None = None,
) -> Generator[str, None, Outcome]:
    """Run one routed request on its model, recording it; yields text, returns its Outcome."""
    a.ledger.start(
        Started(
            request_id,
            request.session_id,
            source,
            decision.task,
            decision.model,
            decision.reason,
            decision.confidence,
            parent_id,
            dict(request.prompt) or None,
            request.user,
        )
    )
    ran = yield from _leased(a, request, decision, cancel, work)
    return _finish(a, request_id, ran, cancel)


def _leased(
    a: Context,
    request: Request,
    decision: RouteDecision,
    cancel: threading.Event | None,
    work: Work | None,
) -> Generator[str, None, _Ran]:
    """Lease the model, run the work on it, time it; a failure becomes a status, not a raise."""
    routed = replace(request, model=decision.model)
    result, status, error, error_type = None, "ok", None, None
    fallback: dict | None = None  # the model asked for could not start; who served
    queue_s = load_s = run_s = 0.0
    device, evicted = "cpu", ()
    # Started before the lease so a GPU's counter also sees the load.
    meter = EnergyMeter(a.settings.device if a.settings.device != "auto" else "cuda")
    if not a.pool.is_loaded(decision.model):
        # Seconds of loading before the first word: say what is happening.
        entry = a.catalog.entries.get(decision.model)
        yield Loading(
            decision.model, entry.name if entry else decision.model, entry.size_mb if entry else 0
        )
    try:
        with a.pool.lease(decision.model) as lease:
            queue_s, load_s, evicted = lease.queue_s, lease.load_s, lease.evicted
            if lease.fallback_reason:  # its runtime could not start: say who answered
                fallback = {"asked": decision.model, "why": lease.fallback_reason}
                decision = _served_by(decision, lease.model, lease.fallback_reason)
            load_s += a.routing_loads.pop(request.text, 0.0)
            device = lease.adapter.device
            if lease.adapter.family == "text":  # known only now: the device reading it
                routed = within_prompt_budget(a.settings, routed, device)
            started = time.perf_counter()
            run = work or (lambda adapter, req, stop: adapter.stream(req, stop))
            for item in run(lease.adapter, routed, cancel):
                if isinstance(item, Result):
                    result = item
                else:
                    yield item
            run_s = time.perf_counter() - started
    except AssistantError as err:
        status, error, error_type = err.status, str(err), type(err).__name__
    except Exception as err:  # a bug or a library failure: say so, keep serving
        traceback.print_exc(file=sys.stderr)
        status, error_type = "error", "InternalError"
        error = f"The model failed unexpectedly ({type(err).__name__}: {err}). Try again."
    joules = meter.read_joules() if device.startswith("cuda") else None
    return _Ran(
        decision,
        result,
        status,
        error,
        error_type,
        fallback,
        queue_s,
        load_s,
        run_s,
        device,
        evicted,
        joules,
    )


def _timings(ran: _Ran) -> tuple[float, float, float]:
    """(queue_s, run_s, the device seconds this request pays for) as the ledger keeps them."""
    queue_s, run_s, busy_s = ran.queue_s, ran.run_s, ran.run_s
    if ran.result is not None and ran.result.queue_s:
        # Waiting for a batch slot inside the model is queueing, not work.
        queue_s, run_s = queue_s + ran.result.queue_s, max(0.0, run_s - ran.result.queue_s)
    if ran.result is not None:
        # Requests decoded in one batch share the device: each pays its share.
        busy_s = run_s / max(1, ran.result.batch_size)
    return queue_s, run_s, busy_s


def _served_by(decision: RouteDecision, model: str, why: str) -> RouteDecision:
    return replace(
        decision,
        model=model,
        reason=f"{decision.reason}; {decision.model} could not start ({why}), so {model} answered",
    )


def _finish(a: Context, request_id: str, ran: _Ran, cancel: threading.Event | None) -> Outcome:
    """Price the step and close its ledger row; the Outcome says the same."""
    usage = ran.result.usage if ran.result else None
    queue_s, run_s, busy_s = _timings(ran)
    entry = a.catalog.entries.get(ran.decision.model)
    cost = cost_of(
        ran.decision.task,
        ran.device,
        ran.load_s + busy_s,
        usage,
        a.prices,
        ran.joules,
        entry.prices if entry else None,
        entry.cloud_comparable if entry else True,
    )
    a.ledger.finish(
        Finished(
            request_id,
            ran.status,
            ran.error,
            queue_s,
            ran.load_s,
            run_s,
            usage.units_in if usage else 0,
            usage.units_out if usage else 0,
            usage.unit if usage else "tokens",
            ran.device,
            _extra(ran.evicted, ran.result, ran.fallback),
            cost,
            # Stopped by the person: the row says so, with what was produced until then.
            stopped=ran.status == "ok" and cancel is not None and cancel.is_set(),
        )
    )
    return Outcome(
        request_id,
        ran.decision,
        ran.result,
        ran.status,
        ran.error,
        queue_s,
        ran.load_s,
        run_s,
        ran.device,
        ran.evicted,
        ran.error_type,
        cost=cost,
    )


def reject(
    a: Context,
    request_id: str,
    request: Request,
    source: str,
    err: AssistantError,
    parent_id: str | None = None,
    decision: RouteDecision | None = None,
) -> Outcome:
    """The one way a refused request ends: a ledger row, then its Outcome.

    Rejected requests are recorded too: the ledger is the audit trail of
    everything users tried, not only of what ran.
    """
    if decision is not None:
        task, model, reason = decision.task, decision.model, "refused after routing"
    else:
        task = getattr(err, "task", None) or request.task or ""
        model, reason = request.model or "", "rejected before routing"
    a.ledger.start(
        Started(
            request_id,
            request.session_id,
            source,
            task,
            model,
            reason,
            0.0,
            parent_id,
            user=request.user,
        )
    )
    a.ledger.finish(Finished(request_id, err.status, str(err)))
    return rejected(request_id, err, decision)


def priced(a: Context, decision: RouteDecision) -> RouteDecision:
    """Each alternative with what it typically cost here, from the ledger's own history."""
    alternatives = []
    for alt in decision.alternatives:
        usd, runs = a.ledger.typical_cost(alt["model"], decision.task)
        alternatives.append({**alt, "est_usd_local": usd, "est_from_requests": runs})
    return replace(decision, alternatives=tuple(alternatives))


def _extra(evicted, result: Result | None, fallback: dict | None = None) -> dict | None:
    """What else the ledger keeps: models evicted to make room, how a picture was made,
    and which model served when the one routed to could not start (the started row
    names the one routed to; the ledger is append-only)."""
    extra = {}
    if fallback:
        extra["fallback"] = fallback
    if evicted:
        extra["evicted"] = list(evicted)
    if result is not None and result.recipe:
        extra["recipe"] = dict(result.recipe)  # "same again with 8 steps" starts from here
    return extra or None


def silent(adapter: Adapter, request: Request, stop) -> Iterator[Result]:
    """Run the model without showing its words: a grounded reply is checked before it is shown."""
    for item in adapter.stream(request, stop):
        if isinstance(item, Result):
            yield item


def drain(steps: Generator[str, None, Outcome]) -> Outcome:
    """Run a step generator to its end and return what it returned."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
