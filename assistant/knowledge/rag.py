"""The knowledge base: documents in Chroma (vectors) and SQLite (registry, full text).

Where things live:
- Chroma holds each chunk's vector, text and metadata; embedded
  (``PersistentClient`` in ASSISTANT_HOME/documents/chroma) or a server
  (``chroma run``; ASSISTANT_CHROMA_URL). Chroma is always handed the
  assistant's own embedding function: its default one downloads a model.
- ``documents.sqlite`` holds the registry (which documents, complete or
  not) and an FTS5 index of the same chunks for BM25. SQLite's BM25 is
  incremental and on disk, so nothing is rebuilt in memory at start.

Crash safety: chunk ids come from the file's hash, the position and the
splitter version, so re-running an ingest writes the same ids (Chroma
upserts, SQLite ignores a known id). A document is marked complete only
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
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.knowledge import chroma
from assistant.knowledge.documents import Chunk, Parsed, chunk, file_hash, safe_name
from models.base import BadInput

Embed = Callable[[Sequence[str]], list[list[float]]]
Progress = Callable[[float, str], None]
SHARED = "shared"
BATCH = 64  # chunks embedded and written together: one batch lost at most to a crash
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al. 2009)

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT NOT NULL, collection TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    bytes INTEGER NOT NULL, chunks INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('ingesting', 'complete')),
    added REAL NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (collection, doc_id)
);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, collection TEXT NOT NULL,
    position INTEGER NOT NULL, location TEXT NOT NULL, start_s REAL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (collection, doc_id);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
"""


@dataclass(frozen=True)
class Document:
    doc_id: str
    collection: str
    name: str
    kind: str
    bytes: int
    chunks: int
    status: str  # "complete" | "ingesting" (interrupted: ingest the file again to finish)
    added: float
    path: str  # the kept copy, inside ASSISTANT_HOME


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
    def __init__(self, folder: Path, model_id: str, chroma_url: str | None = None):
        self.folder = folder
        self.model_id = model_id  # the embedder every vector here came from
        self.chroma_url = chroma_url
        self._client = None
        self._collections: dict = {}  # name -> Chroma collection handle, opened once
        self._lock = threading.Lock()  # one writer at a time per process
        folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            folder / "documents.sqlite", check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)

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
        kept = self.folder / "files" / doc_id[:16] / name
        chunks = chunk(parsed, doc_id)
        with self._lock:
            if not kept.is_file():
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, kept.with_suffix(kept.suffix + ".part"))
                kept.with_suffix(kept.suffix + ".part").replace(kept)
            self._db.execute(
                "INSERT OR IGNORE INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    doc_id,
                    collection,
                    name,
                    parsed.kind,
                    source.stat().st_size,
                    len(chunks),
                    "ingesting",
                    time.time(),
                    str(kept),
                ),
            )
            before = self._count(collection, doc_id)
            target = self._collection(collection)
            for i in range(0, len(chunks), BATCH):
                batch = chunks[i : i + BATCH]
                self._write(target, collection, name, str(kept), batch, embed)
                progress(
                    (i + len(batch)) / len(chunks), f"{name}: {i + len(batch)}/{len(chunks)} chunks"
                )
            self._db.execute(
                "UPDATE documents SET status='complete', chunks=? WHERE collection=? AND doc_id=?",
                (len(chunks), collection, doc_id),
            )
        return self.document(collection, doc_id), len(chunks) - before

    def _write(
        self, target, collection: str, name: str, path: str, batch: list[Chunk], embed: Embed
    ) -> None:
        # Chroma first, then SQLite: a crash between them leaves a chunk
        # that the re-run's upsert and INSERT OR IGNORE both accept again.
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
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO chunks VALUES (?,?,?,?,?,?,?)",
                [
                    (c.id, c.doc_id, collection, c.position, c.location, c.start_s, c.text)
                    for c in batch
                ],
            )

    def delete(self, collection: str, doc_id: str) -> Document:
        doc = self.document(collection, doc_id)
        if doc is None:
            raise BadInput("That document is not in the knowledge base (already deleted?).")
        with self._lock:
            self._collection(collection).delete(where={"doc_id": doc_id})
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "DELETE FROM chunks WHERE collection=? AND doc_id=?", (collection, doc_id)
                )
                self._db.execute(
                    "DELETE FROM documents WHERE collection=? AND doc_id=?", (collection, doc_id)
                )
            still_used = self._db.execute("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,))
            if still_used.fetchone() is None:
                shutil.rmtree(self.folder / "files" / doc_id[:16], ignore_errors=True)
        return doc

    def drop(self, collection: str) -> None:
        """Forget a whole collection: a message's own attachments, once it is answered."""
        for doc in self.documents([collection]):
            self.delete(collection, doc.doc_id)
        with self._lock:
            if self._collections.pop(collection, None) is not None:
                self._client.delete_collection(collection)

    # -- reading --------------------------------------------------------------

    def document(self, collection: str, doc_id: str) -> Document | None:
        row = self._db.execute(
            "SELECT * FROM documents WHERE collection=? AND doc_id=?", (collection, doc_id)
        ).fetchone()
        return Document(*row) if row else None

    def documents(self, collections: Sequence[str]) -> list[Document]:
        marks = ",".join("?" * len(collections))
        rows = self._db.execute(
            f"SELECT * FROM documents WHERE collection IN ({marks}) ORDER BY added DESC",
            tuple(collections),
        )
        return [Document(*r) for r in rows]

    def collections_keeping(self, folder: str) -> set[str]:
        """The collections whose documents are kept in files/<folder> (a doc id's first 16)."""
        rows = self._db.execute(
            "SELECT collection FROM documents WHERE substr(doc_id, 1, 16) = ?", (folder,)
        )
        return {r[0] for r in rows}

    def has_documents(self, collections: Sequence[str]) -> bool:
        marks = ",".join("?" * len(collections))
        row = self._db.execute(
            f"SELECT 1 FROM documents WHERE status='complete' AND collection IN ({marks}) LIMIT 1",
            tuple(collections),
        )
        return row.fetchone() is not None

    def texts(self, collections: Sequence[str], limit: int = -1) -> list[str]:
        """The chunks' texts in these collections, in chunk id order (a stable sample)."""
        marks = ",".join("?" * len(collections))
        rows = self._db.execute(
            f"SELECT text FROM chunks WHERE collection IN ({marks}) ORDER BY chunk_id LIMIT ?",
            (*collections, limit),
        )
        return [r[0] for r in rows]

    def name_of(self, chunk_id: str) -> str:
        row = self._db.execute(
            "SELECT d.name FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
            " WHERE c.chunk_id = ?",
            (chunk_id,),
        ).fetchone()
        return row[0] if row else "?"

    def _count(self, collection: str, doc_id: str) -> int:
        return self._db.execute(
            "SELECT COUNT(*) FROM chunks WHERE collection=? AND doc_id=?", (collection, doc_id)
        ).fetchone()[0]

    def chunk_ids(self, collection: str) -> tuple[set[str], set[str]]:
        """The ids in SQLite and in Chroma (tests compare them after a crash)."""
        sql = {
            r[0]
            for r in self._db.execute(
                "SELECT chunk_id FROM chunks WHERE collection=?", (collection,)
            )
        }
        return sql, set(self._collection(collection).get(include=[])["ids"])

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
        """Chunk ids ranked by BM25 over the words of ``query``, best first."""
        words = re.findall(r"\w+", query.lower())
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in dict.fromkeys(words))
        marks = ",".join("?" * len(collections))
        rows = self._db.execute(
            f"SELECT c.chunk_id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? AND c.collection IN ({marks}) "
            f"ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, *collections, n),
        )
        return [r[0] for r in rows]

    def search(
        self, query: str, vector: list[float], collections: Sequence[str], k: int = 4
    ) -> list[Hit]:
        """Hybrid retrieval: vector and BM25 rankings fused by reciprocal rank."""
        near = self.nearest(vector, collections)
        similarity = dict(near)
        scores: dict[str, float] = {}
        for ranking in ([i for i, _ in near], self.keyword(query, collections)):
            for rank, chunk_id in enumerate(ranking):
                scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        if not scores:
            return []
        marks = ",".join("?" * len(scores))
        rows = self._db.execute(
            f"SELECT c.chunk_id, c.doc_id, d.name, c.location, c.text, c.start_s, d.path "
            f"FROM chunks c JOIN documents d "
            f"ON d.doc_id = c.doc_id AND d.collection = c.collection "
            f"WHERE d.status = 'complete' AND c.chunk_id IN ({marks})",
            tuple(scores),
        ).fetchall()
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
        self._db.close()
