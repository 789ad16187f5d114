"""Answering from documents: retrieve → (rerank) → pick sentences → the grounded answer.

Each model that runs is a step of its own in the ledger (the embedder's
retrieval, the reranker, the text model), linked to the request by parent
id. The store and the prompts are in assistant/knowledge.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Generator, Iterator
from dataclasses import replace

from assistant.catalog.entries import Entry
from assistant.flow.context import Context
from assistant.flow.grounded import grounded_decision
from assistant.flow.ingest import embedder_id, index
from assistant.flow.outcome import Outcome, chain
from assistant.flow.pool import Loading
from assistant.flow.step import Work, run_step, silent
from assistant.knowledge import grounding
from assistant.knowledge.documents import file_hash
from assistant.knowledge.rag import ONCE_PREFIX, collections_for
from assistant.routing.router import RouteDecision
from models.base import Embedder, Request, Reranker, Result, Usage

ANSWER_PASSAGES = 4  # excerpts the text model answers from (a 135M model reads few well)
RERANK_POOL = 20  # candidates handed to a reranker, when there is one


def routing_load(a: Context, request: Request) -> Loading | None:
    """The embedder the router is about to load, when it is not resident, else None.

    The router compares a typed question with the person's documents
    (``document_match``); with a cold embedder that takes seconds before any
    step starts, so the bubble says what loads. A question the router settles
    before that comparison (a scene to draw) is announced too: rare, and true
    of the next document question.
    """
    if request.attachments or request.model or not request.text.strip():
        return None
    model = embedder_id(a)
    if a.pool.is_loaded(model) or not a.store.has_documents(collections_for(request.user)):
        return None
    entry = a.catalog.entries[model]
    return Loading(model, entry.name, entry.size_mb)


def document_match(a: Context, request: Request) -> tuple[float, str] | None:
    """How close the question is to the user's documents: (cosine, name); None: no documents.

    The router asks this; the query's vector is kept for the retrieval
    step, so a routed question is embedded once.
    """
    collections = collections_for(request.user)
    if not request.text.strip() or not a.store.has_documents(collections):
        return None
    with a.pool.lease(embedder_id(a)) as lease:
        vector = lease.adapter.embed([request.text])[0]
    if len(a.query_vectors) > 64:
        a.query_vectors.clear()
        a.routing_loads.clear()
    a.query_vectors[request.text] = vector
    if lease.load_s > 0:
        a.routing_loads[request.text] = lease.load_s
    near = a.store.nearest(vector, collections, n=1)
    if not near:
        return None
    return near[0][1], a.store.name_of(near[0][0])


def rag(
    a: Context,
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
    reranker, rerank_note = find_reranker(a)
    vectors: dict[str, list[float]] = {}  # the question's vector, for scoring sentences
    wanted = RERANK_POOL if reranker else ANSWER_PASSAGES
    # Attached for this message only: indexed in a collection of the request's own,
    # searched alone (the file is what was asked about), dropped once searched.
    once = bool(request.attachments) and not request.keep_attachments
    searched = (f"{ONCE_PREFIX}{request_id[:16]}",) if once else collections_for(request.user)
    retrieve = _retrieval(a, searched, wanted, vectors, once=once)
    try:
        first = yield from run_step(
            a, request_id, parent_id, request, decision, source, cancel, work=retrieve
        )
    finally:
        if once:
            a.store.drop(searched[0])
    if first.status != "ok" or not first.result.citations:
        if first.result and first.result.text:
            yield first.result.text
        return first
    notes = (rerank_note,) if rerank_note else ()
    if once:
        notes += (_read_once(", ".join(p.name for p in request.attachments)),)
    first, notes = yield from _best_passages(a, request, reranker, first, notes, source, cancel)
    hits = first.result.citations
    quotes, best = _quotes(a, request.text, hits, vectors.get(request.text))
    if not grounding.answers_question(request.text, quotes, best):
        reply, _ = grounding.rag_reply(request.text, "", quotes, hits, relevant=False)
        if request.task != "rag" and not request.attachments:
            # Sent here only because it resembled a document ("how long to boil an
            # egg?" beside a kettle manual): said so, then answered as plain chat.
            return (yield from _general(a, request, first, reply, best, source, cancel))
        yield reply
        return replace(
            first, result=replace(first.result, text=reply, notes=first.result.notes + notes)
        )
    second = yield from _grounded_answer(
        a, request_id, request, quotes, hits, notes, source, cancel
    )
    return chain(first, second)


def _read_once(names: str) -> str:
    """What a reply says of documents attached for this message only."""
    return f"{names}: read for this message only, not added to your documents."


def _retrieval(
    a: Context, collections: list[str], wanted: int, vectors: dict, *, once: bool
) -> Work:
    """The retrieval step's work: index what is attached, then search with the question.

    ``once``: the attachments go into ``collections[0]``, a collection of this
    request's own that the caller drops when the step ends.
    """

    def retrieve(adapter: Embedder, req: Request, stop) -> Iterator[Result]:
        notes, chars = [], 0
        for path in req.attachments:
            note, embedded = index(a, path, path.name, collections[0], adapter)
            if once:
                note = _read_once(path.name)
            notes.append(note)
            chars += embedded
        hits = []
        if req.text.strip():
            vector = a.query_vectors.pop(req.text, None) or adapter.embed([req.text])[0]
            chars += len(req.text)
            hits = a.store.search(req.text, vector, collections, k=wanted)
            vectors[req.text] = vector
        if not hits and req.text.strip():
            notes.append("Nothing in your documents matches this question.")
        citations = tuple(h.as_citation() for h in hits)
        if once:
            # The kept copy goes with the collection: cite the upload the chat shows.
            uploads = {file_hash(p): str(p) for p in req.attachments}
            citations = tuple(
                {**c, "path": uploads.get(h.doc_id, c["path"])}
                for c, h in zip(citations, hits, strict=True)
            )
        yield Result(
            text="\n".join(notes),
            usage=Usage(chars, len(hits), "characters"),
            citations=citations,
        )

    return retrieve


def _best_passages(
    a: Context,
    request: Request,
    reranker: Entry | None,
    first: Outcome,
    notes: tuple[str, ...],
    source: str,
    cancel: threading.Event | None,
) -> Generator[str, None, tuple[Outcome, tuple[str, ...]]]:
    """Retrieval's outcome, reranked when a reranker is set, cut to ANSWER_PASSAGES."""
    hits = first.result.citations
    if reranker is not None and len(hits) > 1:
        ranked = yield from _rerank(a, first.request_id, request, reranker, hits, source, cancel)
        if ranked.status == "ok":
            first = chain(first, ranked)
        else:  # e.g. the hub model cannot be fetched here: answer from retrieval's order
            notes += (f"Reranking failed ({ranked.error}); the passages are in retrieval's order.",)
    hits = first.result.citations
    if len(hits) > ANSWER_PASSAGES:  # unranked candidates: the answer reads and cites the best
        first = replace(first, result=replace(first.result, citations=hits[:ANSWER_PASSAGES]))
    return first, notes


def _grounded_answer(
    a: Context,
    request_id: str,
    request: Request,
    quotes: list[grounding.Quote],
    hits: tuple[dict, ...],
    notes: tuple[str, ...],
    source: str,
    cancel: threading.Event | None,
) -> Generator[str, None, Outcome]:
    """The text model answers from the picked sentences; a reply they do not support is
    replaced by the passage itself."""
    history, dropped = grounding.trim_history(request.history, a.settings.history_turns)
    if dropped:
        notes += (grounding.trimmed_note(dropped),)
    answer = grounded_decision(
        a,
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
    second = yield from run_step(
        a, uuid.uuid4().hex, request_id, follow, answer, source, cancel, work=silent
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
        second = replace(second, result=replace(second.result, notes=second.result.notes + notes))
    return second


def _general(
    a: Context,
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
    decision = a.router.route(follow)
    decision = replace(
        decision,
        reason=f"your documents do not answer it (best sentence "
        f"{best or 0:.2f} < {grounding.SENTENCE_MATCH}) → {decision.model}",
    )
    second = yield from run_step(
        a, uuid.uuid4().hex, first.request_id, follow, decision, source, cancel
    )
    if second.result is not None:
        second = replace(
            second, result=replace(second.result, text=f"{said}\n\n{second.result.text}")
        )
    first = replace(first, result=replace(first.result, citations=()))
    return chain(first, second)


def _quotes(
    a: Context, question: str, hits, vector: list[float] | None
) -> tuple[list[grounding.Quote], float | None]:
    """The sentences of the retrieved chunks that best answer the question, and the best
    cosine; scored by BM25 and by the embedder already loaded for retrieval."""
    pool = grounding.candidates(hits)
    similarity = None
    if pool and vector is not None:
        with a.pool.lease(embedder_id(a)) as lease:
            found = lease.adapter.embed([s for s, _ in pool])
        similarity = [sum(x * y for x, y in zip(vector, v, strict=True)) for v in found]
    quotes = grounding.pick_quotes(question, pool, similarity)
    return quotes, max(similarity) if similarity else None


def find_reranker(a: Context) -> tuple[Entry | None, str]:
    """(the reranking model, or None; a note when ASSISTANT_RERANKER names no such model)."""
    wanted = a.settings.reranker
    if not wanted:
        return None, ""
    entry = a.catalog.entries.get(wanted)
    if entry is None or "rerank" not in entry.tasks:
        known = ", ".join(e.id for e in a.catalog.for_task("rerank")) or "none"
        return None, (
            f"Reranking is off: ASSISTANT_RERANKER={wanted!r} is not a reranking "
            f"model in the catalog (known: {known})."
        )
    return entry, ""


def _rerank(
    a: Context,
    parent_id: str,
    request: Request,
    entry: Entry,
    hits: tuple[dict, ...],
    source: str,
    cancel: threading.Event | None,
) -> Generator[str, None, Outcome]:
    """Reorder ``hits`` by the cross-encoder's scores; the best ANSWER_PASSAGES, renumbered."""

    def rerank(adapter: Reranker, req: Request, stop) -> Iterator[Result]:
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
        yield from run_step(
            a, uuid.uuid4().hex, parent_id, request, decision, source, cancel, work=rerank
        )
    )
