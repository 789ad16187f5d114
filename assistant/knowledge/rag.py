"""The knowledge base: documents in Chroma (vectors) and a registry (documents, full text).

Where things live:
- Chroma holds each chunk's vector, text and metadata; embedded
  (``PersistentClient`` in ASSISTANT_HOME/documents/chroma) or a server
  (``chroma run``; ASSISTANT_CHROMA_URL). Chroma is always handed the
  assistant's own embedding function: its default one downloads a model.
- The registry (registry.py) holds which documents there are, complete or
  not, and the same chunks' text for keyword search: ``documents.sqlite``
  with FTS5's BM25, or the shared PostgreSQL database (ASSISTANT_DATABASE_URL)
  with its full-text search. Both index incrementally on disk, so nothing is
  rebuilt in memory at start.
- The kept copy of each file: ASSISTANT_HOME/documents/files, or the folder
  replicas share (ASSISTANT_SHARED_DIR).

Crash safety: chunk ids come from the file's hash, the position and the
splitter version, so re-running an ingest writes the same ids (Chroma
upserts, the registry ignores a known id). A document is marked complete only
after every chunk is in both stores; search ignores incomplete ones, and
ingesting the file again finishes it.

Collections: one per user (``user-<name>``) and ``shared``; a question
searches the user's and the shared one. A document attached to one message
only lives in a collection of its own for that request (``Store.drop``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.database import Database
from assistant.knowledge import chroma
from assistant.knowledge.documents import Chunk, Parsed, chunk, file_hash, safe_name
from assistant.knowledge.registry import ChunkRow, Document, open_registry
from models.base import BadInput

Embed = Callable[[Sequence[str]], list[list[float]]]
Progress = Callable[[float, str], None]
SHARED = "shared"
BATCH = 64  # chunks embedded and written together: one batch lost at most to a crash
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009)


@dataclass(frozen=True)
class Hit:
    n: int  # citation number, [1] first
    chunk_id: str
    doc_id: str
    name: str
    location: str
    text: str
    score: float  # fused score; higher is better
    similarity: float | None  # cosine to the question, when the vector side found it
    start_s: float | None
    path: str

    def as_citation(self) -> dict:
        c = {
            "n": self.n,
            "source": self.name,
            "location": self.location,
            "text": self.text,
            "path": self.path,
        }
        if self.start_s is not None:
            c["start_s"] = self.start_s
        return c


# A collection of one request's own: documents attached "for this message only".
ONCE_PREFIX = "once-"
ONCE_TTL_S = 3600  # no request runs this long: an older one was left by a crash


def collections_for(user: str) -> tuple[str, str]:
    """(the user's own collection, the shared one).

    Chroma names allow few characters; a name that had to be changed gets a
    hash of the real one, so users "a.b" and "a_b" never share a collection.
    """
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", user)[:48] or "local"
    if clean != user:
        clean = f"{clean[:39]}-{hashlib.sha256(user.encode()).hexdigest()[:8]}"
    return (f"user-{clean}", SHARED)


class Store:
    """Chroma and the registry together, each write in the order that survives a crash.

    ``registry``: the shared database, or None for ``folder``/documents.sqlite.
    ``kept``: where files' kept copies go (default ``folder``/files).
    """

    def __init__(
        self,
        folder: Path,
        model_id: str,
        chroma_url: str | None = None,
        registry: Database | None = None,
        kept: Path | None = None,
    ):
        self.folder = folder
        self.model_id = model_id  # the embedder every vector here came from
        self.chroma_url = chroma_url
        self.kept = kept or folder / "files"
        self._client = None
        self._collections: dict = {}  # name -> Chroma collection handle, opened once
        self._lock = threading.Lock()  # one writer at a time per process
        folder.mkdir(parents=True, exist_ok=True)
        self.registry = open_registry(
            registry if registry is not None else folder / "documents.sqlite"
        )

    # -- Chroma ---------------------------------------------------------------

    def _collection(self, name: str):
        # Opened once per name: every routed question asks for the nearest
        # chunk, and get_or_create is a round trip (to the server, if any).
        if name not in self._collections:
            if self._client is None:
                self._client = chroma.client(self.folder / "chroma", self.chroma_url)
            self._collections[name] = self._client.get_or_create_collection(
                name,
                embedding_function=chroma.embedding_function(self.model_id),
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collections[name]

    # -- writing --------------------------------------------------------------

    def add(
        self,
        source: Path,
        name: str,
        parsed: Parsed,
        collection: str,
        embed: Embed,
        progress: Progress = lambda f, m: None,
    ) -> tuple[Document, int]:
        """Index ``parsed`` (read from ``source``); returns the document and chunks added now.

        ``embed`` is the leased embedder's: the store never loads a model.
        """
        doc_id = file_hash(source)
        existing = self.document(collection, doc_id)
        if existing and existing.status == "complete":
            return existing, 0
        name = safe_name(name)
        kept = self.kept / doc_id[:16] / name
        chunks = chunk(parsed, doc_id)
        with self._lock:
            if not kept.is_file():
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, kept.with_suffix(kept.suffix + ".part"))
                kept.with_suffix(kept.suffix + ".part").replace(kept)
            size, now = source.stat().st_size, time.time()
            self.registry.begin(
                Document(
                    doc_id, collection, name, parsed.kind, size, len(chunks), "", now, str(kept)
                )
            )
            before = self.registry.count(collection, doc_id)
            target = self._collection(collection)
            for i in range(0, len(chunks), BATCH):
                batch = chunks[i : i + BATCH]
                self._write(target, collection, name, str(kept), batch, embed)
                progress(
                    (i + len(batch)) / len(chunks), f"{name}: {i + len(batch)}/{len(chunks)} chunks"
                )
            self.registry.complete(collection, doc_id, len(chunks))
        return self.document(collection, doc_id), len(chunks) - before

    def _write(
        self, target, collection: str, name: str, path: str, batch: list[Chunk], embed: Embed
    ) -> None:
        # Chroma first, then the registry: a crash between them leaves a chunk
        # that the re-run's upsert and ON CONFLICT DO NOTHING both accept again.
        vectors = embed([c.text for c in batch])
        metadatas = []
        for c in batch:
            meta = {
                "doc_id": c.doc_id,
                "name": name,
                "location": c.location,
                "position": c.position,
                "path": path,
            }
            if c.start_s is not None:
                meta["start_s"] = c.start_s
            metadatas.append(meta)
        target.upsert(
            ids=[c.id for c in batch],
            embeddings=vectors,
            documents=[c.text for c in batch],
            metadatas=metadatas,
        )
        self.registry.add_chunks(
            ChunkRow(c.id, c.doc_id, collection, c.position, c.location, c.start_s, c.text)
            for c in batch
        )

    def delete(self, collection: str, doc_id: str) -> Document:
        doc = self.document(collection, doc_id)
        if doc is None:
            raise BadInput("That document is not in the knowledge base (already deleted?).")
        with self._lock:
            self._collection(collection).delete(where={"doc_id": doc_id})
            if not self.registry.remove(collection, doc_id):
                shutil.rmtree(self.kept / doc_id[:16], ignore_errors=True)
        return doc

    def drop(self, collection: str) -> None:
        """Forget a whole collection: a message's own attachments, once it is answered."""
        for doc in self.documents([collection]):
            self.delete(collection, doc.doc_id)
        with self._lock:
            if self._collections.pop(collection, None) is not None:
                self._client.delete_collection(collection)

    def drop_stale(self, prefix: str, older_than_s: float) -> set[str]:
        """Drop the collections named ``prefix``... older than this; return their names.

        A message's own attachments live in such a collection while it is
        answered (flow/retrieval.py); one left by a crash mid-request is never
        listed or searched, but its chunks, vectors and kept copy stay until this.
        """
        stale = self.registry.collections_older(prefix, time.time() - older_than_s)
        for name in stale:
            self.drop(name)
        return stale

    # -- reading --------------------------------------------------------------

    def document(self, collection: str, doc_id: str) -> Document | None:
        return self.registry.document(collection, doc_id)

    def documents(self, collections: Sequence[str]) -> list[Document]:
        return self.registry.documents(collections)

    def collections_keeping(self, folder: str) -> set[str]:
        """The collections whose documents are kept in files/<folder> (a doc id's first 16)."""
        return self.registry.collections_keeping(folder)

    def has_documents(self, collections: Sequence[str]) -> bool:
        return self.registry.has_documents(collections)

    def texts(self, collections: Sequence[str], limit: int | None = None) -> list[str]:
        """The chunks' texts in these collections, in chunk id order (a stable sample)."""
        return self.registry.texts(collections, limit)

    def name_of(self, chunk_id: str) -> str:
        return self.registry.name_of(chunk_id)

    def chunk_ids(self, collection: str) -> tuple[set[str], set[str]]:
        """The ids in the registry and in Chroma (tests compare them after a crash)."""
        chroma_ids = set(self._collection(collection).get(include=[])["ids"])
        return self.registry.chunk_ids(collection), chroma_ids

    def nearest(self, vector: list[float], collections: Sequence[str], n: int = 20):
        """(chunk id, cosine similarity) of the closest chunks, best first."""
        found = []
        for name in collections:
            col = self._collection(name)
            size = col.count()
            if size == 0:
                continue
            res = col.query(
                query_embeddings=[vector], n_results=min(n, size), include=["distances"]
            )
            found += [(i, 1.0 - d) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]
        return sorted(found, key=lambda x: -x[1])[:n]

    def keyword(self, query: str, collections: Sequence[str], n: int = 20) -> list[str]:
        """Chunk ids ranked by the words of ``query`` (BM25, or PostgreSQL's rank), best first."""
        return self.registry.keyword(query, collections, n)

    def search(
        self, query: str, vector: list[float], collections: Sequence[str], k: int = 4
    ) -> list[Hit]:
        """Hybrid retrieval: vector and keyword rankings fused by reciprocal rank."""
        near = self.nearest(vector, collections)
        similarity = dict(near)
        scores: dict[str, float] = {}
        for ranking in ([i for i, _ in near], self.keyword(query, collections)):
            for rank, chunk_id in enumerate(ranking):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        # One row per chunk: the same file in the user's and the shared collection is one hit.
        rows = list({r[0]: r for r in self.registry.found(list(scores), collections)}.values())
        rows.sort(key=lambda r: -scores[r[0]])
        return [
            Hit(
                n + 1,
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                round(scores[r[0]], 5),
                similarity.get(r[0]),
                r[5],
                r[6],
            )
            for n, r in enumerate(rows[:k])
        ]

    def close(self) -> None:
        self.registry.close()
