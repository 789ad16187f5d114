"""The flow of one request: check → route → lease a model → run → record.

The UI, the CLI and the API all call :meth:`Assistant.handle`, so a
request is checked, routed, timed and recorded the same way wherever it
comes from. Domain errors become an Outcome with a message here, once;
callers only render it.

It is longer than our ~400-line guide because every path that runs a model
(chains, RAG, ingest, embeddings, speech) goes through the one ``_step`` that
times, prices and records it; the policy around it lives in limits.py and
costs.py, the documents themselves in rag.py.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path

from assistant.accounting.costs import PRICES_FILE, EnergyMeter, Prices, cost_of
from assistant.accounting.ledger import Finished, Ledger, Started, open_ledger
from assistant.accounting.limits import (
    RateLimiter,
    check_daily_quota,
    check_public,
    within_session_budget,
)
from assistant.catalog.backends import build_adapter
from assistant.catalog.entries import Catalog, Entry
from assistant.chats.conversations import Chats, Template, clean_text, load_templates
from assistant.database import Database
from assistant.evaluation import choices
from assistant.evaluation.votes import Votes
from assistant.flow.outcome import Outcome, _add_costs, _chain
from assistant.flow.pool import Pool
from assistant.knowledge import grounding, picture_text
from assistant.knowledge.rag import Store, collections_for
from assistant.routing.router import RouteDecision, Router
from assistant.settings import Settings
from models.base import (
    Adapter,
    AssistantError,
    BadInput,
    Message,
    Request,
    Result,
    Usage,
    pick_device,
)

# Measured quality of each text model on grounded work, quoted on the route card
# (written from `python -m assistant bench answers`; see the file's "_about").
MEASURED = Path(__file__).parent.parent / "routing" / "router_data" / "answers_measured.json"

# What a step does with its leased model; by default, the model's own stream.
Work = Callable[[Adapter, Request, threading.Event | None], Iterator[str | Result]]

ANSWER_PASSAGES = 4  # excerpts the text model answers from (a 135M model reads few well)
RERANK_POOL = 20  # candidates handed to a reranker, when there is one

# Words that ask for the transcript itself, so the chain stops after speech.
TRANSCRIBE_ONLY = re.compile(r"transcri|расшифр|транскри|transkryp|转录|转写|听写", re.IGNORECASE)


# Written by `bench text` in ASSISTANT_HOME: which runtime won on this CPU.
BENCH_TEXT_FILE = "bench-text.json"


def measured_text_default(settings: Settings, catalog: Catalog) -> str | None:
    """The chat model `bench text` found fastest here, if it ran and that model is usable.

    The catalog's default serves until the bench has run on this machine:
    which runtime wins depends on the CPU (AVX-512, cores, memory).
    """
    try:
        found = json.loads((settings.home / BENCH_TEXT_FILE).read_text()).get("text_model")
    except (OSError, ValueError, AttributeError):
        return None
    entry = catalog.entries.get(found) if isinstance(found, str) else None
    if entry is None or not entry.availability(settings.weights_dir)[0]:
        return None
    return entry.id


def _has_cuda(device: str) -> bool:
    if device == "auto" and os.environ.get("SPACES_ZERO_GPU"):
        return True  # a GPU is lent per call there, and CUDA must not be touched at start
    return pick_device(device).startswith("cuda")


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
        image = settings.image_model or ("sd-turbo" if _has_cuda(settings.device) else None)
        if image:
            preferred.update(image_generation=image, image_edit=image)
        self.router = Router(
            catalog,
            preferred,
            documents=self._document_match,
            grounded=self._grounded,
            weights_dir=settings.weights_dir,
        )
        choices.apply(self)  # what a person chose after an eval outlives restarts
        self._store: Store | None = None
        self._chats: Chats | None = None
        self._vectors: dict[str, list[float]] = {}  # the router's query vectors, reused once
        # Cold loads of the embedder paid while routing a text: charged to its request.
        self._routing_loads: dict[str, float] = {}
        self.limiter = RateLimiter(settings.rate_limit)

    @classmethod
    def from_settings(cls, settings: Settings, progress=print) -> Assistant:
        settings.ensure_home()
        warnings: list[str] = []

        def warn(message: str) -> None:
            warnings.append(message)
            progress(f"Warning: {message}")

        try:
            catalog = Catalog.load(extra=settings.catalog_file)
        except BadInput as err:  # a broken user file must not stop the app either
            warn(f"{err} Using the built-in catalog only.")
            catalog = Catalog.load()
        if settings.text_model:
            catalog.get(settings.text_model)  # fail early, naming the known ids
        else:
            measured = measured_text_default(settings, catalog)
            if measured:
                progress(
                    f"Text model: {measured}, the fastest one chat that `bench text` "
                    f"measured on this CPU ({settings.home / BENCH_TEXT_FILE})"
                )
                settings = settings.with_(text_model=measured)
        pool = Pool(
            factory=lambda model_id: build_adapter(catalog.get(model_id), settings, progress),
            memory_budget_mb=settings.memory_gb * 1024,
            sizes={e.id: e.memory_mb for e in catalog.entries.values()},
            fallbacks={e.id: e.fallback for e in catalog.entries.values() if e.fallback},
            log=progress,
        )
        try:
            prices = Prices.load()
        except BadInput as err:  # a broken override must not stop the app
            warn(f"{err} Using the built-in price table.")
            prices = Prices.load(PRICES_FILE)
        ledger = open_ledger(settings, warn)
        assistant = cls(settings, catalog, pool, ledger, prices)
        if ledger.db.shared:  # every shared store's schema version is checked at start
            assistant.chats  # noqa: B018
            Votes(ledger.db)
        assistant.warnings = warnings
        return assistant

    # -- checking -------------------------------------------------------------

    def check(self, request: Request) -> Request:
        """Reject what no model should see; return the request with clean text."""
        text = clean_text(request.text)
        if not text.strip() and not request.attachments:
            raise BadInput("Your message is empty. Type a question, or attach a file.")
        limit = self.settings.max_message_chars
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
            max_new_tokens=min(request.max_new_tokens, self.settings.max_new_tokens),
            dropped_turns=request.dropped_turns + dropped,
        )

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

    def _again(self, request: Request) -> Request:
        """ "Same again with 8 steps" redraws this session's last picture with that change."""
        text = request.text
        # Short commands only: "again, what is the capital of France?" is a question.
        if request.attachments or request.task or len(text) > 80 or "?" in text:
            return request
        if not AGAIN.search(text):
            return request
        for row in self.ledger.rows(request.session_id, limit=50):
            recipe = json.loads(row["extra"] or "{}").get("recipe")
            if row["status"] == "ok" and recipe and row["task"] == "image_generation":
                prompt, options = again_options(text, recipe)
                return replace(request, text=prompt, options=options, task="image_generation")
        return request

    def _answer(
        self, request: Request, source: str, cancel: threading.Event | None
    ) -> Generator[str, None, Outcome]:
        request_id = uuid.uuid4().hex
        decision = None
        try:
            # First: malformed requests count against the rate too.
            self.limiter.check(request.user)
            check_daily_quota(self.settings, self.ledger, request.user)
            request = self.check(request)
            request = self._again(request)
            decision = self.router.route(request)
            decision = within_session_budget(
                self.settings, self.ledger, self.catalog, request, decision
            )
            # After the budget's choice: the model that will run is the one checked.
            entry = self.catalog.entries.get(decision.model)
            check_public(self.settings, decision.task, entry.backend if entry else "")
            decision = self._priced(decision)
        except AssistantError as err:
            # A budget refusal was routed first: its row names the task and model.
            self._record_rejected(request_id, request, source, err, decision=decision)
            return Outcome(
                request_id, decision, None, err.status, str(err), error_type=type(err).__name__
            )
        first = yield from self._run(request_id, None, request, decision, source, cancel)
        said = first.result.text if first.result else ""
        if not (first.status == "ok" and decision.task in ("asr", "vision") and said):
            return first
        if decision.task == "vision" and entry and entry.backend != "classifier-ocr":
            return first  # a vision-language model answered the question itself
        if decision.task == "asr" and (
            request.transcribe_only or TRANSCRIBE_ONLY.search(request.text)
        ):
            return first
        question = request.text.strip()
        if decision.task == "vision":
            return (yield from self._picture_answer(request, first, source, cancel))
        text = f"{question}\n\n{said}" if question else said
        # A memo with no instruction: told it is a voice note, Qwen2.5-Coder answered all 8 of
        # bench answers' memos (without it, "I'm sorry, but I can't assist with that" to 3).
        history = (
            request.history
            if question
            else grounding.with_system(grounding.VOICE_SYSTEM, request.history)
        )
        follow = Request(
            text=text,
            history=history,
            session_id=request.session_id,
            prefer=request.prefer,
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
            user=request.user,
            options=request.options,
        )
        yield "\n"
        child_id = uuid.uuid4().hex
        try:
            follow = self.check(follow)
            child_decision = self.router.route(follow)
            if child_decision.task == "text":
                child_decision = self._grounded_decision(
                    request, "answers what was said", child_decision
                )
        except AssistantError as err:
            self._record_rejected(child_id, follow, source, err, parent_id=request_id)
            second = Outcome(
                child_id, None, None, err.status, str(err), error_type=type(err).__name__
            )
        else:
            second = yield from self._run(
                child_id, request_id, follow, child_decision, source, cancel
            )
        return _chain(first, second)

    def _picture_answer(
        self, request: Request, first: Outcome, source: str, cancel: threading.Event | None
    ) -> Generator[str, None, Outcome]:
        """Answer a question about a picture from what the classifier and OCR saw.

        An amount, date, code or name asked for is read from the OCR lines by
        rule, and what the picture shows is the classifier's own labels: no
        model can "improve" them. Other questions go to the grounded text
        model with the labels and lines as short plain lists; a reply whose
        words the readers did not see is replaced by their findings.
        """
        from models.vision import read_description

        question = request.text.strip()
        seen = read_description(first.result.text)
        if not question or not seen:
            return first  # the description is the answer
        labels = [x for _, found, _ in seen for x in found]
        lines = [x for _, _, found in seen for x in found]
        ruled = picture_text.picture_reply(question, labels, lines)
        if ruled is not None:
            yield "\n" + ruled
            note = "Answered by rule from what the picture's readers saw; no text model ran."
            return replace(
                first,
                result=replace(first.result, text=ruled, notes=(first.result.notes + (note,))),
            )
        history, dropped = grounding.trim_history(request.history, self.settings.history_turns)
        follow = Request(
            text=picture_text.picture_prompt(question, labels, lines),
            history=grounding.with_system(picture_text.PICTURE_SYSTEM, history),
            session_id=request.session_id,
            user=request.user,
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
        )
        decision = self._grounded_decision(request, "answers from what the picture's readers saw")
        second = yield from self._step(
            uuid.uuid4().hex, first.request_id, follow, decision, source, cancel, work=_silent
        )
        if second.status == "ok":
            reply = grounding.strip_scaffolding(second.result.text)
            evidence = lines + [label for label, _ in labels]
            notes = (grounding.trimmed_note(dropped),) if dropped else ()
            if grounding.support(reply, evidence, question) < grounding.SUPPORT_THRESHOLD:
                reply = picture_text.picture_facts(labels, lines)
                notes += (
                    "The text model's reply held words the picture's readers did not "
                    "see, so their findings are shown instead.",
                )
            yield "\n" + reply
            second = replace(
                second, result=replace(second.result, text=reply, notes=second.result.notes + notes)
            )
        return _chain(first, second)

    # -- routing by difficulty ------------------------------------------------

    def _grounded(self) -> tuple[str, str] | None:
        """(the model for grounded work and follow-ups, why), or None: the chat model does it.

        The first of ASSISTANT_GROUNDED_MODEL that can run here; the reason
        quotes its measured quality against the chat model's and its cost.
        """
        weights = self.settings.weights_dir
        default = self.catalog.default_for("text", self.settings.text_model)
        for model_id in self.settings.grounded_model:
            entry = self.catalog.entries.get(model_id)
            if entry is None or "text" not in entry.tasks or not entry.availability(weights)[0]:
                continue
            if default is not None and entry.id == default.id:
                return None
            return (
                entry.id,
                f"{entry.id}{_quality(entry.id, default.id if default else '')}"
                f"{self._typical(entry.id)}",
            )
        return None

    def _typical(self, model_id: str) -> str:
        usd, runs = self.ledger.typical_cost(model_id, "text")
        return f"; typically ${usd:.6f} an answer here ({runs} answers)" if usd else ""

    def _grounded_decision(
        self, request: Request, why: str, routed: RouteDecision | None = None
    ) -> RouteDecision:
        """The text step of a grounded chain: the person's pick, else the stronger model."""
        picked = dict(request.prefer).get("text") or request.model
        if routed is not None and (
            picked
            or routed.model
            != self.catalog.default_for("text", self.router.preferred.get("text")).id
        ):
            return replace(routed, reason=f"{why} → {routed.reason}")
        # A text model a person chose after an eval answers grounded work too.
        stronger = None if picked or "text" in self.router.because else self._grounded()
        if stronger:
            return RouteDecision(
                "text",
                stronger[0],
                f"{why} → {stronger[1]}",
                1.0,
                routed.alternatives if routed else (),
            )
        entry = self.catalog.default_for("text", picked or self.router.preferred.get("text"))
        return RouteDecision("text", entry.id, f"{why} → {entry.id}", 1.0)

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

    # -- conversations --------------------------------------------------------

    @property
    def chats(self) -> Chats:
        if self._chats is None:
            self._chats = Chats(self.database_for(self.settings.chats_path))
        return self._chats

    def database_for(self, sqlite_path: Path) -> Path | Database:
        """Where a store lives: with the ledger when it is shared (on its connections), else
        in its own SQLite file."""
        return self.ledger.db if self.ledger.db.shared else sqlite_path

    def templates(self) -> dict[str, Template]:
        # Read each time: a person editing ASSISTANT_HOME/templates.json sees it at once.
        return load_templates(self.settings.home)

    # -- documents ------------------------------------------------------------

    @property
    def store(self) -> Store:
        # Opened on first use: Chroma takes ~0.5 s to open, and most chats never need it.
        if self._store is None:
            self._store = Store(
                self.settings.documents_dir, self._embedder_id(), self.settings.chroma_url
            )
        return self._store

    def _embedder_id(self) -> str:
        entry = self.catalog.default_for("rag")
        if entry is None:
            raise BadInput("No embedding model in the catalog serves documents.")
        return entry.id

    def _document_match(self, request: Request) -> tuple[float, str] | None:
        """How close the question is to the user's documents: (cosine, name); None: no documents.

        The router asks this; the query's vector is kept for the retrieval
        step, so a routed question is embedded once.
        """
        collections = collections_for(request.user)
        if not request.text.strip() or not self.store.has_documents(collections):
            return None
        with self.pool.lease(self._embedder_id()) as lease:
            vector = lease.adapter.embed([request.text])[0]
        if len(self._vectors) > 64:
            self._vectors.clear()
            self._routing_loads.clear()
        self._vectors[request.text] = vector
        if lease.load_s > 0:
            self._routing_loads[request.text] = lease.load_s
        near = self.store.nearest(vector, collections, n=1)
        if not near:
            return None
        return near[0][1], self.store.name_of(near[0][0])

    def _run(
        self,
        request_id: str,
        parent_id: str | None,
        request: Request,
        decision: RouteDecision,
        source: str,
        cancel: threading.Event | None,
    ) -> Generator[str, None, Outcome]:
        if decision.task == "rag":
            return (yield from self._rag(request_id, parent_id, request, decision, source, cancel))
        return (yield from self._step(request_id, parent_id, request, decision, source, cancel))

    def _rag(
        self,
        request_id: str,
        parent_id: str | None,
        request: Request,
        decision: RouteDecision,
        source: str,
        cancel: threading.Event | None,
    ) -> Generator[str, None, Outcome]:
        """Retrieval (attached documents indexed first), then the text model answers from it.

        With a reranker configured (ASSISTANT_RERANKER), retrieval hands it
        RERANK_POOL candidates and its best ANSWER_PASSAGES go to the answer:
        a step of its own in the ledger, like every model that runs.
        """
        collections = collections_for(request.user)
        reranker, rerank_note = self._reranker()
        wanted = RERANK_POOL if reranker else ANSWER_PASSAGES

        def retrieve(adapter, req: Request, stop) -> Iterator[Result]:
            notes, chars = [], 0
            for path in req.attachments:
                note, embedded = self._index(path, path.name, collections[0], adapter.embed)
                notes.append(note)
                chars += embedded
            hits = []
            if req.text.strip():
                vector = self._vectors.pop(req.text, None) or adapter.embed([req.text])[0]
                chars += len(req.text)
                hits = self.store.search(req.text, vector, collections, k=wanted)
                vectors[req.text] = vector
            if not hits and req.text.strip():
                notes.append("Nothing in your documents matches this question.")
            yield Result(
                text="\n".join(notes),
                usage=Usage(chars, len(hits), "characters"),
                citations=tuple(h.as_citation() for h in hits),
            )

        vectors: dict[str, list[float]] = {}
        first = yield from self._step(
            request_id, parent_id, request, decision, source, cancel, work=retrieve
        )
        if first.status != "ok" or not first.result.citations:
            if first.result and first.result.text:
                yield first.result.text
            return first
        hits = first.result.citations
        notes = (rerank_note,) if rerank_note else ()
        if reranker is not None and len(hits) > 1:
            ranked = yield from self._rerank(request_id, request, reranker, hits, source, cancel)
            if ranked.status == "ok":
                first, hits = _chain(first, ranked), ranked.result.citations
            else:  # e.g. the hub model cannot be fetched here: answer from retrieval's order
                notes += (
                    f"Reranking failed ({ranked.error}); the passages are in retrieval's order.",
                )
        if len(hits) > ANSWER_PASSAGES:  # unranked candidates: the answer reads and cites the best
            hits = hits[:ANSWER_PASSAGES]
            first = replace(first, result=replace(first.result, citations=hits))
        quotes, best = self._quotes(request.text, hits, vectors.get(request.text))
        if not grounding.answers_question(request.text, quotes, best):
            reply, _ = grounding.rag_reply(request.text, "", quotes, hits, relevant=False)
            if request.task != "rag" and not request.attachments:
                # Sent here only because it resembled a document ("how long to boil an
                # egg?" beside a kettle manual): said so, then answered as plain chat.
                return (
                    yield from self._general(
                        request_id, request, first, reply, best, source, cancel
                    )
                )
            yield reply
            return replace(
                first, result=replace(first.result, text=reply, notes=first.result.notes + notes)
            )
        history, dropped = grounding.trim_history(request.history, self.settings.history_turns)
        if dropped:
            notes += (grounding.trimmed_note(dropped),)
        answer = self._grounded_decision(
            request,
            f"answer from the {len(quotes)} best-matching sentences of {len(hits)} excerpts",
        )
        follow = Request(
            text=grounding.grounded_prompt(request.text, quotes),
            history=grounding.with_system(grounding.GROUNDED_SYSTEM, history),
            session_id=request.session_id,
            user=request.user,
            max_new_tokens=min(request.max_new_tokens, 64),
            temperature=request.temperature,
        )
        second = yield from self._step(
            uuid.uuid4().hex, request_id, follow, answer, source, cancel, work=_silent
        )
        if second.status == "ok":
            reply, how = grounding.rag_reply(request.text, second.result.text, quotes, hits, True)
            if how == "quote":
                notes += (
                    "The model's own wording was not supported by your documents, so "
                    "the passage is quoted instead.",
                )
            yield reply
            second = replace(second, result=replace(second.result, text=reply))
        if notes and second.result is not None:
            second = replace(
                second, result=replace(second.result, notes=second.result.notes + notes)
            )
        return _chain(first, second)

    def _general(
        self,
        request_id: str,
        request: Request,
        first: Outcome,
        said: str,
        best: float | None,
        source: str,
        cancel: threading.Event | None,
    ) -> Generator[str, None, Outcome]:
        """A question the documents do not answer, routed to them by resemblance alone."""
        yield said + "\n\n"
        follow = replace(request, task="text")
        decision = self.router.route(follow)
        decision = replace(
            decision,
            reason=f"your documents do not answer it (best sentence "
            f"{best or 0:.2f} < {grounding.SENTENCE_MATCH}) → {decision.model}",
        )
        second = yield from self._step(
            uuid.uuid4().hex, request_id, follow, decision, source, cancel
        )
        if second.result is not None:
            second = replace(
                second, result=replace(second.result, text=f"{said}\n\n{second.result.text}")
            )
        first = replace(first, result=replace(first.result, citations=()))
        return _chain(first, second)

    def _quotes(
        self, question: str, hits, vector: list[float] | None
    ) -> tuple[list[grounding.Quote], float | None]:
        """The sentences of the retrieved chunks that best answer the question, and the best
        cosine; scored by BM25 and by the embedder already loaded for retrieval."""
        pool = grounding.candidates(hits)
        similarity = None
        if pool and vector is not None:
            with self.pool.lease(self._embedder_id()) as lease:
                found = lease.adapter.embed([s for s, _ in pool])
            similarity = [sum(a * b for a, b in zip(vector, v, strict=True)) for v in found]
        quotes = grounding.pick_quotes(question, pool, similarity)
        return quotes, max(similarity) if similarity else None

    def _reranker(self) -> tuple[Entry | None, str]:
        """(the reranking model, or None; a note when ASSISTANT_RERANKER names no such model)."""
        wanted = self.settings.reranker
        if not wanted:
            return None, ""
        entry = self.catalog.entries.get(wanted)
        if entry is None or "rerank" not in entry.tasks:
            known = ", ".join(e.id for e in self.catalog.for_task("rerank")) or "none"
            return None, (
                f"Reranking is off: ASSISTANT_RERANKER={wanted!r} is not a reranking "
                f"model in the catalog (known: {known})."
            )
        return entry, ""

    def _rerank(
        self,
        parent_id: str,
        request: Request,
        entry: Entry,
        hits: tuple[dict, ...],
        source: str,
        cancel: threading.Event | None,
    ) -> Generator[str, None, Outcome]:
        """Reorder ``hits`` by the cross-encoder's scores; the best ANSWER_PASSAGES, renumbered."""

        def rerank(adapter, req: Request, stop) -> Iterator[Result]:
            scores = adapter.scores(req.text, [h["text"] for h in hits])
            order = sorted(range(len(hits)), key=lambda i: -scores[i])[:ANSWER_PASSAGES]
            kept = tuple(
                {**hits[i], "n": n + 1, "rerank_score": round(scores[i], 4)}
                for n, i in enumerate(order)
            )
            yield Result(usage=Usage(1, len(kept), "searches"), citations=kept)

        decision = RouteDecision(
            "rerank",
            entry.id,
            f"reorder {len(hits)} retrieved passages for the question (ASSISTANT_RERANKER)",
            1.0,
        )
        return (
            yield from self._step(
                uuid.uuid4().hex, parent_id, request, decision, source, cancel, work=rerank
            )
        )

    def _index(
        self, path: Path, name: str, collection: str, embed, progress=None, parsed=None
    ) -> tuple[str, int]:
        """Index one file with the leased embedder: (a note for the person, characters embedded)."""
        from assistant.knowledge.documents import check_file, read

        if parsed is None:
            check_file(path, self.settings.max_upload_bytes)
            parsed = read(path)
        doc, added = self.store.add(
            path, name, parsed, collection, embed, progress or (lambda f, m: None)
        )
        if not added:
            return f"{doc.name} was already indexed ({doc.chunks} chunks); nothing added.", 0
        chars = sum(len(text) for text, _, _ in parsed.pieces)
        return f"Indexed {doc.name}: {added} new chunks in {collection}.", chars

    def ingest(
        self,
        path: Path,
        name: str | None = None,
        user: str = "local",
        shared: bool = False,
        source: str = "cli",
        progress: Callable[[float, str], None] | None = None,
    ) -> Outcome:
        """Add one file to the user's (or the shared) collection; recorded like a request.

        Audio is transcribed first, as its own linked step, and indexed by
        time; the store's ids make a second ingest of the same file add nothing.
        """
        from assistant.knowledge.documents import Parsed, check_file, from_segments, read
        from assistant.routing.router import AUDIO, IMAGE

        name = name or path.name
        collection = "shared" if shared else collections_for(user)[0]
        request = Request(text=f"index {name}", attachments=(path,), session_id=source, user=user)
        request_id = uuid.uuid4().hex
        try:
            check_file(path, self.settings.max_upload_bytes, also=AUDIO | IMAGE)
            decision = RouteDecision(
                "rag", self._embedder_id(), f"index {name} into {collection}", 1.0
            )
        except AssistantError as err:
            self._record_rejected(request_id, request, source, err)
            return Outcome(
                request_id, None, None, err.status, str(err), error_type=type(err).__name__
            )
        heard = None
        suffix = path.suffix.lower()
        if suffix in AUDIO | IMAGE:
            # Recordings are indexed by what was said, pictures by what their readers saw.
            task, why = (
                ("asr", "a recording to index: transcribe it first")
                if suffix in AUDIO
                else ("vision", "a picture to index: label it and read its text")
            )
            first = RouteDecision(task, self.catalog.default_for(task).id, why, 1.0)
            heard = _drain(self._step(uuid.uuid4().hex, request_id, request, first, source, None))
            if heard.status != "ok":
                return heard

        def index(adapter, req: Request, stop) -> Iterator[Result]:
            if heard is not None and suffix in IMAGE:
                parsed = Parsed("image", ((heard.result.text, "picture", None),))
            elif heard is not None:
                segments = list(heard.result.segments)
                if not segments:
                    raise BadInput(f"{name}: no speech was heard in it; nothing was indexed.")
                parsed = from_segments(segments)
            else:
                parsed = read(path)
            said, chars = self._index(path, name, collection, adapter.embed, progress, parsed)
            yield Result(text=said, usage=Usage(chars, 0, "characters"))

        outcome = _drain(self._step(request_id, None, request, decision, source, None, index))
        return _chain(heard, outcome) if heard else outcome

    def embed(
        self,
        texts: list[str],
        model: str | None = None,
        session_id: str = "api",
        source: str = "api",
        user: str = "local",
    ) -> tuple[Outcome, list[list[float]]]:
        """Vectors for ``texts`` from an embedding model; recorded and priced like a request."""
        request = Request(
            text=f"embed {len(texts)} text(s)", session_id=session_id, model=model, user=user
        )
        request_id = uuid.uuid4().hex
        try:
            entry = self.catalog.get(model or self._embedder_id())
            if entry.family != "embed":
                raise BadInput(
                    f"Model '{entry.id}' is not an embedding model; try {self._embedder_id()}."
                )
            decision = RouteDecision("rag", entry.id, "embeddings asked for", 1.0)
        except AssistantError as err:
            self._record_rejected(request_id, request, source, err)
            return Outcome(
                request_id, None, None, err.status, str(err), error_type=type(err).__name__
            ), []
        vectors: list[list[float]] = []

        def work(adapter, req: Request, stop) -> Iterator[Result]:
            vectors.extend(adapter.embed(texts))
            count = getattr(adapter, "count_tokens", None)
            tokens = count(texts) if count else sum(len(t) for t in texts) // 4
            yield Result(usage=Usage(tokens, 0, "tokens"))

        return _drain(self._step(request_id, None, request, decision, source, None, work)), vectors

    def _priced(self, decision: RouteDecision) -> RouteDecision:
        """Each alternative with what it typically cost here, from the ledger's own history."""
        priced = []
        for alt in decision.alternatives:
            usd, runs = self.ledger.typical_cost(alt["model"], decision.task)
            priced.append({**alt, "est_usd_local": usd, "est_from_requests": runs})
        return replace(decision, alternatives=tuple(priced))

    def _step(
        self,
        request_id: str,
        parent_id: str | None,
        request: Request,
        decision: RouteDecision,
        source: str,
        cancel: threading.Event | None,
        work: Work | None = None,
    ) -> Generator[str, None, Outcome]:
        """Run one routed request on its model, recording it; yields text, returns its Outcome."""
        self.ledger.start(
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
        routed = replace(request, model=decision.model)
        result, status, error, error_type = None, "ok", None, None
        fallback: dict | None = None  # the model asked for could not start; who served
        queue_s = load_s = run_s = 0.0
        device, evicted = "cpu", ()
        # Started before the lease so a GPU's counter also sees the load.
        meter = EnergyMeter(self.settings.device if self.settings.device != "auto" else "cuda")
        try:
            with self.pool.lease(decision.model) as lease:
                queue_s, load_s, evicted = lease.queue_s, lease.load_s, lease.evicted
                if lease.fallback_reason:  # its runtime could not start: say who answered
                    fallback = {"asked": decision.model, "why": lease.fallback_reason}
                    decision = replace(
                        decision,
                        model=lease.model,
                        reason=(
                            f"{decision.reason}; {decision.model} could not start "
                            f"({lease.fallback_reason}), so {lease.model} answered"
                        ),
                    )
                load_s += self._routing_loads.pop(request.text, 0.0)
                device = lease.adapter.device
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
        usage = result.usage if result else None
        busy_s = run_s
        if result is not None and result.queue_s:
            # Waiting for a batch slot inside the model is queueing, not work.
            queue_s, run_s = queue_s + result.queue_s, max(0.0, run_s - result.queue_s)
        if result is not None:
            # Requests decoded in one batch share the device: each pays its share.
            busy_s = run_s / max(1, result.batch_size)
        measured = meter.read_joules() if device.startswith("cuda") else None
        entry = self.catalog.entries.get(decision.model)
        cost = cost_of(
            decision.task,
            device,
            load_s + busy_s,
            usage,
            self.prices,
            measured,
            entry.prices if entry else None,
            entry.cloud_comparable if entry else True,
        )
        self.ledger.finish(
            Finished(
                request_id,
                status,
                error,
                queue_s,
                load_s,
                run_s,
                usage.units_in if usage else 0,
                usage.units_out if usage else 0,
                usage.unit if usage else "tokens",
                device,
                _extra(evicted, result, fallback),
                cost,
                # Stopped by the person: the row says so, with what was produced until then.
                stopped=status == "ok" and cancel is not None and cancel.is_set(),
            )
        )
        return Outcome(
            request_id,
            decision,
            result,
            status,
            error,
            queue_s,
            load_s,
            run_s,
            device,
            evicted,
            error_type,
            cost=cost,
        )

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
            task = getattr(err, "task", None) or request.task or ""
            model, reason = request.model or "", "rejected before routing"
        self.ledger.start(
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
        self.ledger.finish(Finished(request_id, err.status, str(err)))


# "same again", "again with 8 steps", "redo it with guidance 2": the last picture's recipe.
AGAIN = re.compile(r"^\s*(same( again)?|again|redo( it)?|once more|draw it again)\b", re.I)


def again_options(text: str, recipe: dict) -> tuple[str, tuple]:
    """(prompt, options) of the last picture, with what ``text`` changes in it."""
    options = {
        "seed": float(recipe["seed"]),
        "steps": float(recipe["steps"]),
        "guidance": float(recipe["guidance"]),
    }
    if recipe.get("negative"):
        options["negative"] = recipe["negative"]
    if "x" in recipe.get("size", ""):  # "512x768": the hub models' recipes carry it
        width, height = recipe["size"].split("x")
        options.update(width=float(width), height=float(height))
    for key, pattern in (
        ("steps", r"(\d+)\s*steps?"),
        ("guidance", r"guidance\D{0,4}([\d.]+)"),
        ("seed", r"seed\D{0,4}(\d+)"),
    ):
        if found := re.search(pattern, text, re.I):
            options[key] = float(found.group(1))
    if re.search(r"\b(new|another|different) seed\b", text, re.I):
        options["seed"] = -1.0
    return recipe["prompt"], tuple(options.items())


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


def _silent(adapter: Adapter, request: Request, stop) -> Iterator[Result]:
    """Run the model without showing its words: a grounded reply is checked before it is shown."""
    for item in adapter.stream(request, stop):
        if isinstance(item, Result):
            yield item


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


def _drain(steps: Generator[str, None, Outcome]) -> Outcome:
    """Run a step generator to its end and return what it returned."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


# History beyond this many messages' worth of characters is never tokenized: no
# model here has a context that long, and counting 2,000 turns in tokens (again
# for each turn dropped) held a worker for minutes while everyone waited.
HISTORY_CHARS_PER_MESSAGE = 8


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
