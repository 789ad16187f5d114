"""The documents' registry and keyword index: SQLite (the default) or the shared PostgreSQL.

Which documents each collection holds (and whether each is complete), and
every chunk's text for keyword search, beside the vectors that Chroma
keeps. Embedded, it is ASSISTANT_HOME/documents/documents.sqlite with an
FTS5 index ranked by BM25; with ASSISTANT_DATABASE_URL it is two tables of
the database every replica shares, ranked by PostgreSQL's own full-text
search, so a document indexed through one machine is found through another.

Why PostgreSQL's full-text search rather than BM25 computed here: it is
incremental and indexed (GIN), as FTS5 is, so nothing is read into memory
per question and nothing is rebuilt at start. Its ``ts_rank_cd`` has no
inverse document frequency, which BM25 has; the keyword ranking is one of
the two that reciprocal-rank fusion combines with the vectors' (rag.py), so
its order matters more than its scores. The 'simple' configuration
lowercases and never stems, so words of any language stay as written.

Both keep the same rules (rag.py): a document is 'ingesting' until every
chunk is in, and only complete ones are listed as searchable or cited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.database import Database, Migration, SQLiteDatabase

# FTS5 follows the chunks table through these (an external-content index is not kept by itself).
FTS_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
"""
VERSION_TABLE = "documents_schema_version"
MIGRATIONS = [
    # 1: the schema documents.sqlite had before it was numbered (IF NOT EXISTS adopts such
    # a file), with each database's keyword index.
    Migration(
        """
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
""",
        sqlite="""
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
"""
        + FTS_TRIGGERS,
        postgres="""
ALTER TABLE chunks ADD COLUMN words tsvector
    GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED;
CREATE INDEX chunks_words ON chunks USING GIN (words);
""",
    ),
    # 2: a chunk is keyed by its collection too. Two users who index the same file get the
    # same chunk ids (they come from the file's hash); keyed by the id alone, the second
    # user's chunks were dropped as known, and the first user's delete took them away.
    Migration(
        sqlite="""
CREATE TABLE chunks_keyed (
    chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, collection TEXT NOT NULL,
    position INTEGER NOT NULL, location TEXT NOT NULL, start_s REAL, text TEXT NOT NULL,
    PRIMARY KEY (collection, chunk_id)
);
INSERT INTO chunks_keyed SELECT chunk_id, doc_id, collection, position, location, start_s, text
    FROM chunks;
DROP TABLE chunks;
ALTER TABLE chunks_keyed RENAME TO chunks;
CREATE INDEX chunks_doc ON chunks (collection, doc_id);
"""
        + FTS_TRIGGERS
        + "INSERT INTO chunks_fts (chunks_fts) VALUES ('rebuild');",
        postgres="""
ALTER TABLE chunks DROP CONSTRAINT chunks_pkey, ADD PRIMARY KEY (collection, chunk_id);
""",
    ),
]
COLUMNS = "doc_id, collection, name, kind, bytes, chunks, status, added, path"


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
    path: str  # the kept copy (ASSISTANT_HOME, or the shared folder: ASSISTANT_SHARED_DIR)


@dataclass(frozen=True)
class ChunkRow:
    """One chunk as the registry keeps it."""

    chunk_id: str
    doc_id: str
    collection: str
    position: int
    location: str  # "page 3", "line 12", "01:02"...
    start_s: float | None  # a recording's chunk: where it starts
    text: str


def open_registry(where: Path | Database, upgrade: bool | None = None) -> Registry:
    """The registry in ``where``: the shared database, or the SQLite file at that path."""
    db = where if isinstance(where, Database) else SQLiteDatabase(where)
    kind = PostgresRegistry if db.shared else SQLiteRegistry
    return kind(db, owned=not isinstance(where, Database), upgrade=upgrade)


class Registry:
    """The documents and their chunks; ``keyword`` is each database's own."""

    def __init__(self, db: Database, owned: bool = False, upgrade: bool | None = None):
        self.db = db
        self._owned = owned  # a database opened for the registry alone is closed with it
        db.migrate(MIGRATIONS, VERSION_TABLE, upgrade)

    # -- writing --------------------------------------------------------------

    def begin(self, doc: Document) -> None:
        """Register ``doc`` as ingesting, unless this collection already has it."""
        self.db.execute(
            f"INSERT INTO documents ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (
                doc.doc_id,
                doc.collection,
                doc.name,
                doc.kind,
                doc.bytes,
                doc.chunks,
                "ingesting",
                doc.added,
                doc.path,
            ),
        )

    def add_chunks(self, rows: Iterable[ChunkRow]) -> None:
        """Add chunks (all or none); a chunk id already here is left as it is."""
        with self.db.transaction():
            for r in rows:
                self.db.execute(
                    "INSERT INTO chunks (chunk_id, doc_id, collection, position, location,"
                    " start_s, text) VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                    (r.chunk_id, r.doc_id, r.collection, r.position, r.location, r.start_s, r.text),
                )

    def complete(self, collection: str, doc_id: str, chunks: int) -> None:
        self.db.execute(
            "UPDATE documents SET status='complete', chunks=? WHERE collection=? AND doc_id=?",
            (chunks, collection, doc_id),
        )

    def remove(self, collection: str, doc_id: str) -> bool:
        """Forget a document and its chunks; whether any collection still has that file."""
        with self.db.transaction():
            for table in ("chunks", "documents"):
                self.db.execute(
                    f"DELETE FROM {table} WHERE collection=? AND doc_id=?", (collection, doc_id)
                )
        return self.db.one("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,)) is not None

    # -- reading --------------------------------------------------------------

    def document(self, collection: str, doc_id: str) -> Document | None:
        row = self.db.one(
            f"SELECT {COLUMNS} FROM documents WHERE collection=? AND doc_id=?",
            (collection, doc_id),
        )
        return Document(*row) if row else None

    def documents(self, collections: Sequence[str]) -> list[Document]:
        if not collections:  # PostgreSQL refuses IN ()
            return []
        rows = self.db.all(
            f"SELECT {COLUMNS} FROM documents WHERE collection IN ({_marks(collections)})"
            " ORDER BY added DESC",
            tuple(collections),
        )
        return [Document(*r) for r in rows]

    def collections_keeping(self, folder: str) -> set[str]:
        """The collections whose documents are kept in files/<folder> (a doc id's first 16)."""
        rows = self.db.all(
            "SELECT collection FROM documents WHERE substr(doc_id, 1, 16) = ?", (folder,)
        )
        return {r[0] for r in rows}

    def collections_older(self, prefix: str, before: float) -> set[str]:
        """Collections named ``prefix``... holding a document added before ``before``."""
        rows = self.db.all(
            "SELECT DISTINCT collection FROM documents WHERE collection LIKE ? AND added < ?",
            (prefix + "%", before),
        )
        return {r[0] for r in rows}

    def has_documents(self, collections: Sequence[str]) -> bool:
        return (
            self.db.one(
                "SELECT 1 FROM documents WHERE status='complete'"
                f" AND collection IN ({_marks(collections)}) LIMIT 1",
                tuple(collections),
            )
            is not None
        )

    def texts(self, collections: Sequence[str], limit: int | None = None) -> list[str]:
        """The chunks' texts in these collections, in chunk id order (a stable sample)."""
        sql = (
            f"SELECT text FROM chunks WHERE collection IN ({_marks(collections)}) ORDER BY chunk_id"
        )
        args = tuple(collections)
        if limit is not None:
            sql, args = sql + " LIMIT ?", (*args, limit)
        return [r[0] for r in self.db.all(sql, args)]

    def name_of(self, chunk_id: str) -> str:
        row = self.db.one(
            "SELECT d.name FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
            " WHERE c.chunk_id = ?",
            (chunk_id,),
        )
        return row[0] if row else "?"

    def count(self, collection: str, doc_id: str) -> int:
        return self.db.one(
            "SELECT COUNT(*) FROM chunks WHERE collection=? AND doc_id=?", (collection, doc_id)
        )[0]

    def chunk_ids(self, collection: str) -> set[str]:
        return {
            r[0]
            for r in self.db.all("SELECT chunk_id FROM chunks WHERE collection=?", (collection,))
        }

    def found(self, chunk_ids: Sequence[str], collections: Sequence[str]) -> list[tuple]:
        """(chunk id, doc id, name, location, text, start_s, path) of those chunks, in these
        collections, that belong to a complete document: an interrupted ingest is never cited."""
        if not chunk_ids or not collections:
            return []
        return self.db.all(
            "SELECT c.chunk_id, c.doc_id, d.name, c.location, c.text, c.start_s, d.path "
            "FROM chunks c JOIN documents d "
            "ON d.doc_id = c.doc_id AND d.collection = c.collection "
            f"WHERE d.status = 'complete' AND c.chunk_id IN ({_marks(chunk_ids)})"
            f" AND c.collection IN ({_marks(collections)})",
            (*chunk_ids, *collections),
        )

    def keyword(self, query: str, collections: Sequence[str], n: int = 20) -> list[str]:
        """Chunk ids ranked by the words of ``query`` (any of them), best first."""
        words = list(dict.fromkeys(re.findall(r"\w+", query.lower())))
        return self._ranked(words, collections, n) if words and collections else []

    def _ranked(self, words: list[str], collections: Sequence[str], n: int) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        if self._owned:
            self.db.close()


class SQLiteRegistry(Registry):
    def _ranked(self, words: list[str], collections: Sequence[str], n: int) -> list[str]:
        # Each word quoted: FTS5 reads bare words such as AND, NEAR or col: as syntax.
        match = " OR ".join(f'"{w}"' for w in words)
        rows = self.db.all(
            "SELECT c.chunk_id FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? AND c.collection IN ({_marks(collections)}) "
            "ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, *collections, n),
        )
        return [r[0] for r in rows]


class PostgresRegistry(Registry):
    def _ranked(self, words: list[str], collections: Sequence[str], n: int) -> list[str]:
        # \w+ words hold no tsquery syntax (no quotes, & | ! : or parentheses), so "any of
        # them" is their ' | '. Normalisation 1 divides by 1 + log(length), as BM25
        # discounts long chunks; the chunk id breaks ties so the order is stable.
        rows = self.db.all(
            "SELECT chunk_id FROM chunks, to_tsquery('simple', ?) q "
            f"WHERE words @@ q AND collection IN ({_marks(collections)}) "
            "ORDER BY ts_rank_cd(words, q, 1) DESC, chunk_id LIMIT ?",
            (" | ".join(words), *collections, n),
        )
        return [r[0] for r in rows]


def _marks(items: Sequence) -> str:
    return ",".join("?" * len(items))
