"""Documents in, vectors out: indexing a file and the embeddings API, each a recorded step.

A recording is transcribed first and a picture read first, each as its own
linked step, so what is indexed is what was said or seen.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from assistant.flow.context import Context
from assistant.flow.outcome import Outcome, chain
from assistant.flow.step import drain, reject, run_step
from assistant.knowledge.rag import collections_for
from assistant.routing.router import RouteDecision
from models.base import AssistantError, BadInput, Embedder, Request, Result, Usage


def embedder_id(a: Context) -> str:
    """The catalog's embedding model for documents (the store's vectors are its)."""
    entry = a.catalog.default_for("rag")
    if entry is None:
        raise BadInput("No embedding model in the catalog serves documents.")
    return entry.id


def ingest(
    a: Context,
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
        check_file(path, a.settings.max_upload_bytes, also=AUDIO | IMAGE)
        decision = RouteDecision("rag", embedder_id(a), f"index {name} into {collection}", 1.0)
    except AssistantError as err:
        return reject(a, request_id, request, source, err)
    heard = None
    suffix = path.suffix.lower()
    if suffix in AUDIO | IMAGE:
        # Recordings are indexed by what was said, pictures by what their readers saw.
        task, why = (
            ("asr", "a recording to index: transcribe it first")
            if suffix in AUDIO
            else ("vision", "a picture to index: label it and read its text")
        )
        first = RouteDecision(task, a.catalog.default_for(task).id, why, 1.0)
        heard = drain(run_step(a, uuid.uuid4().hex, request_id, request, first, source, None))
        if heard.status != "ok":
            return heard

    def work(adapter: Embedder, req: Request, stop) -> Iterator[Result]:
        if heard is not None and suffix in IMAGE:
            parsed = Parsed("image", ((heard.result.text, "picture", None),))
        elif heard is not None:
            segments = list(heard.result.segments)
            if not segments:
                raise BadInput(f"{name}: no speech was heard in it; nothing was indexed.")
            parsed = from_segments(segments)
        else:
            parsed = read(path)
        said, chars = index(a, path, name, collection, adapter, progress, parsed)
        yield Result(text=said, usage=Usage(chars, 0, "characters"))

    outcome = drain(run_step(a, request_id, None, request, decision, source, None, work))
    return chain(heard, outcome) if heard else outcome


def embed(
    a: Context,
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
        entry = a.catalog.get(model or embedder_id(a))
        if entry.family != "embed":
            raise BadInput(f"Model '{entry.id}' is not an embedding model; try {embedder_id(a)}.")
        decision = RouteDecision("rag", entry.id, "embeddings asked for", 1.0)
    except AssistantError as err:
        return reject(a, request_id, request, source, err), []
    vectors: list[list[float]] = []

    def work(adapter: Embedder, req: Request, stop) -> Iterator[Result]:
        vectors.extend(adapter.embed(texts))
        count = getattr(adapter, "count_tokens", None)
        tokens = count(texts) if count else sum(len(t) for t in texts) // 4
        yield Result(usage=Usage(tokens, 0, "tokens"))

    return drain(run_step(a, request_id, None, request, decision, source, None, work)), vectors


def index(
    a: Context,
    path: Path,
    name: str,
    collection: str,
    embedder: Embedder,
    progress=None,
    parsed=None,
) -> tuple[str, int]:
    """Index one file with the leased embedder: (a note for the person, characters embedded)."""
    from assistant.knowledge.documents import check_file, read

    if parsed is None:
        check_file(path, a.settings.max_upload_bytes)
        parsed = read(path)
    doc, added = a.store.add(
        path, name, parsed, collection, embedder.embed, progress or (lambda f, m: None)
    )
    if not added:
        return f"{doc.name} was already indexed ({doc.chunks} chunks); nothing added.", 0
    chars = sum(len(text) for text, _, _ in parsed.pieces)
    return f"Indexed {doc.name}: {added} new chunks in {collection}.", chars
