"""The flow of one request: check → route → lease a model → run → record.

The UI, the CLI and (later) the API all call :meth:`Assistant.handle`, so a
request is checked, routed, timed and recorded the same way wherever it
comes from. Domain errors become an Outcome with a message here, once;
callers only render it.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import traceback
import unicodedata
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field, replace

from assistant.catalog import Catalog
from assistant.costs import PRICES_FILE, Cost, EnergyMeter, Prices, cost_of
from assistant.families import build_adapter
from assistant.ledger import Finished, Ledger, Started, open_or_set_aside
from assistant.pool import Pool
from assistant.router import RouteDecision, Router
from assistant.settings import Settings
from models.base import AssistantError, BadInput, BudgetExceeded, Request, Result

# Words that ask for the transcript itself, so the chain stops after speech.
TRANSCRIBE_ONLY = re.compile(
    r"transcri|расшифр|транскри|transkryp|转录|转写|听写", re.IGNORECASE
)


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
        return {
            "request_id": self.request_id,
            "route": route,
            "steps": [_step_json(s) for s in self.steps] if self.steps else (
                [_step_json(self)] if route else []),  # fmt: skip
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


class Assistant:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        pool: Pool,
        ledger: Ledger,
        prices: Prices | None = None,
    ):
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.ledger = ledger
        self.prices = prices or Prices.load(PRICES_FILE)
        self.warnings: list[str] = []  # said at start, shown at the top of the UI
        preferred = {"text": settings.text_model} if settings.text_model else {}
        self.router = Router(catalog, preferred)

    @classmethod
    def from_settings(cls, settings: Settings, progress=print) -> Assistant:
        settings.ensure_home()
        catalog = Catalog.load()
        if settings.text_model:
            catalog.get(settings.text_model)  # fail early, naming the known ids
        pool = Pool(
            factory=lambda model_id: build_adapter(catalog.get(model_id), settings, progress),
            memory_budget_mb=settings.memory_gb * 1024,
            sizes={e.id: e.memory_mb for e in catalog.entries.values()},
        )
        warnings: list[str] = []

        def warn(message: str) -> None:
            warnings.append(message)
            progress(f"Warning: {message}")

        try:
            prices = Prices.load()
        except BadInput as err:  # a broken override must not stop the app
            warn(f"{err} Using the built-in price table.")
            prices = Prices.load(PRICES_FILE)
        ledger = open_or_set_aside(settings.ledger_path, warn)
        assistant = cls(settings, catalog, pool, ledger, prices)
        assistant.warnings = warnings
        return assistant

    # -- checking -------------------------------------------------------------

    def check(self, request: Request) -> Request:
        """Reject what no model should see; return the request with clean text."""
        text = _clean(request.text)
        if not text.strip() and not request.attachments:
            raise BadInput("Your message is empty. Type a question, or attach a file.")
        limit = self.settings.max_message_chars
        if len(text) > limit:
            raise BadInput(
                f"Your message is {len(text):,} characters; the limit is {limit:,}. "
                "Shorten it, or upload long text as a document and ask about it."
            )
        return replace(request, text=text, max_new_tokens=min(
            request.max_new_tokens, self.settings.max_new_tokens))  # fmt: skip

    # -- the flow -------------------------------------------------------------

    def handle(
        self, request: Request, source: str = "cli", cancel: threading.Event | None = None
    ) -> Iterator[str | Outcome]:
        """Yield text pieces as the model produces them, then one Outcome.

        Audio is a chain: the transcript is routed again as a child request
        (its own ledger row, linked by parent id) unless the words ask only
        for a transcript. A request that asks to be spoken gets one more
        linked step: the answer read aloud.
        """
        outcome = yield from self._answer(request, source, cancel)
        text = outcome.result.text if outcome.result else ""
        if request.speak and outcome.status == "ok" and text:
            outcome = yield from self._speak(outcome, request, source, cancel)
        yield outcome

    def _answer(
        self, request: Request, source: str, cancel: threading.Event | None
    ) -> Generator[str, None, Outcome]:
        request_id = uuid.uuid4().hex
        decision = None
        try:
            request = self.check(request)
            decision = self.router.route(request)
            decision = self._within_budget(request, decision)
            decision = self._priced(decision)
        except AssistantError as err:
            # A budget refusal was routed first: its row names the task and model.
            self._record_rejected(request_id, request, source, err, decision=decision)
            return Outcome(request_id, decision, None, err.status, str(err),
                           error_type=type(err).__name__)  # fmt: skip
        first = yield from self._step(request_id, None, request, decision, source, cancel)
        transcript = first.result.text if first.result else ""
        if not (first.status == "ok" and decision.task == "asr" and transcript):
            return first
        if TRANSCRIBE_ONLY.search(request.text):
            return first
        follow = Request(
            text=f"{request.text.strip()}\n\n{transcript}" if request.text.strip() else transcript,
            history=request.history, session_id=request.session_id, prefer=request.prefer,
            max_new_tokens=request.max_new_tokens, temperature=request.temperature,
        )  # fmt: skip
        yield "\n"
        child_id = uuid.uuid4().hex
        try:
            follow = self.check(follow)
            child_decision = self.router.route(follow)
        except AssistantError as err:
            self._record_rejected(child_id, follow, source, err, parent_id=request_id)
            second = Outcome(child_id, None, None, err.status, str(err),
                             error_type=type(err).__name__)  # fmt: skip
        else:
            second = yield from self._step(
                child_id, request_id, follow, child_decision, source, cancel
            )
        return _chain(first, second)

    def _speak(
        self, answer: Outcome, request: Request, source: str, cancel: threading.Event | None
    ) -> Generator[str, None, Outcome]:
        """Read the answer aloud as a linked step; a failure is said, the answer kept."""
        entry = self.catalog.default_for("tts")
        decision = RouteDecision("tts", entry.id, "you asked for a spoken reply", 1.0)
        spoken_request = Request(text=answer.result.text, session_id=request.session_id)
        spoken = yield from self._step(
            uuid.uuid4().hex, answer.request_id, spoken_request, decision, source, cancel
        )
        steps = answer.steps or (answer,)
        files = answer.result.files + (spoken.result.files if spoken.result else ())
        return replace(
            answer,
            result=replace(answer.result, files=files),
            steps=steps + (spoken,),
            cost=_add_costs(answer.cost, spoken.cost),
            # The answer stands; a voice that failed is reported beside it.
            error=None if spoken.status == "ok" else f"Spoken reply failed: {spoken.error}",
        )

    def _priced(self, decision: RouteDecision) -> RouteDecision:
        """Each alternative with what it typically cost here, from the ledger's own history."""
        priced = []
        for alt in decision.alternatives:
            usd, runs = self.ledger.typical_cost(alt["model"], decision.task)
            priced.append({**alt, "est_usd_local": usd, "est_from_requests": runs})
        return replace(decision, alternatives=tuple(priced))

    def _within_budget(self, request: Request, decision: RouteDecision) -> RouteDecision:
        """Refuse past the session's cap; near it, move to the smallest model for the task."""
        cap = self.settings.session_budget_usd
        if cap is None:
            return decision
        spent = self.ledger.session_spend(request.session_id)
        if spent >= cap:
            raise BudgetExceeded(
                f"This session has spent ${spent:.4g} of its ${cap:.4g} budget, so this request "
                "was not run. Start a new session, or raise ASSISTANT_SESSION_BUDGET_USD."
            )
        if spent < 0.8 * cap or request.model or dict(request.prefer).get(decision.task):
            return decision  # far from the cap, or the person chose the model
        weights = self.settings.weights_dir
        usable = [e for e in self.catalog.for_task(decision.task)
                  if e.built and e.availability(weights)[0]]  # fmt: skip
        smallest = min(usable, key=lambda e: e.memory_mb, default=None)
        if smallest is None or smallest.id == decision.model:
            return decision
        reason = (f"{decision.reason}; budget {spent / cap:.0%} used → smaller model "
                  f"{smallest.id} instead of {decision.model}")  # fmt: skip
        return replace(decision, model=smallest.id, reason=reason)

    def _step(
        self,
        request_id: str,
        parent_id: str | None,
        request: Request,
        decision: RouteDecision,
        source: str,
        cancel: threading.Event | None,
    ) -> Generator[str, None, Outcome]:
        """Run one routed request on its model, recording it; yields text, returns its Outcome."""
        self.ledger.start(
            Started(request_id, request.session_id, source, decision.task, decision.model,
                    decision.reason, decision.confidence, parent_id)
        )  # fmt: skip
        routed = replace(request, model=decision.model)
        result, status, error, error_type = None, "ok", None, None
        queue_s = load_s = run_s = 0.0
        device, evicted = "cpu", ()
        # Started before the lease so a GPU's counter also sees the load.
        meter = EnergyMeter(self.settings.device if self.settings.device != "auto" else "cuda")
        try:
            with self.pool.lease(decision.model) as lease:
                queue_s, load_s, evicted = lease.queue_s, lease.load_s, lease.evicted
                device = lease.adapter.device
                started = time.perf_counter()
                for item in lease.adapter.stream(routed, cancel):
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
        usage = result.usage if result else None
        measured = meter.read_joules() if device.startswith("cuda") else None
        cost = cost_of(decision.task, device, load_s + run_s, usage, self.prices, measured)
        self.ledger.finish(
            Finished(
                request_id, status, error, queue_s, load_s, run_s,
                usage.units_in if usage else 0, usage.units_out if usage else 0,
                usage.unit if usage else "tokens", device,
                {"evicted": list(evicted)} if evicted else None, cost,
            )
        )  # fmt: skip
        return Outcome(request_id, decision, result, status, error, queue_s, load_s, run_s,
                       device, evicted, error_type, cost=cost)  # fmt: skip

    def ask(self, request: Request, source: str = "cli") -> Outcome:
        """Run a request to the end and return its Outcome."""
        outcome = None
        for item in self.handle(request, source):
            if isinstance(item, Outcome):
                outcome = item
        assert outcome is not None
        return outcome

    def _record_rejected(
        self,
        request_id: str,
        request: Request,
        source: str,
        err: AssistantError,
        parent_id: str | None = None,
        decision: RouteDecision | None = None,
    ) -> None:
        # Rejected requests are recorded too: the ledger is the audit trail
        # of everything users tried, not only of what ran.
        if decision is not None:
            task, model, reason = decision.task, decision.model, "refused after routing"
        else:
            task, model, reason = "", request.model or "", "rejected before routing"
        self.ledger.start(
            Started(request_id, request.session_id, source, task, model, reason, 0.0, parent_id)
        )
        self.ledger.finish(Finished(request_id, err.status, str(err)))


def _clean(text: str) -> str:
    # Control characters (NUL, escape sequences) confuse tokenizers and
    # terminals; newlines and tabs are the only ones a message needs.
    return "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc"
    )


def _step_json(step: Outcome) -> dict:
    """One chained step: its route, plus which ledger row it is and how it went."""
    route = step.route.as_dict() if step.route else {"task": None, "model": None}
    timings = {"queue_s": step.queue_s, "load_s": step.load_s, "run_s": step.run_s}
    usage = step.result.usage if step.result else None
    units = None
    if usage:
        units = {"units_in": usage.units_in, "units_out": usage.units_out, "unit": usage.unit}
    return {**route, "request_id": step.request_id, "status": step.status, "timings": timings,
            "usage": units}  # fmt: skip


def _chain(first: Outcome, second: Outcome) -> Outcome:
    """The Outcome of speech followed by the routed transcript, as one exchange.

    The answer is the second step's; the transcript's segments are kept;
    times add up, and the first failure decides the status.
    """
    transcript = first.result
    answer = second.result or Result()
    result = replace(answer, segments=transcript.segments, language=transcript.language)
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
        steps=(first, second),
        cost=_add_costs(first.cost, second.cost),
    )


def _add_costs(a: Cost | None, b: Cost | None) -> Cost | None:
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
