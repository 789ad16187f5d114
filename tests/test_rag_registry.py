"""The documents' registry (assistant/knowledge/registry.py) on SQLite and on PostgreSQL.

The same Store on either database: keyword ranking, hybrid search, an
interrupted ingest that is never listed or searched, and collections that
stay their owner's, including two users who index the same file.
"""

from __future__ import annotations

import pytest

from assistant.knowledge import rag
from assistant.knowledge.documents import Parsed
from assistant.knowledge.rag import Store, collections_for
from tests.conftest import FakeEmbedder

VOLCANO = "Rhyolite magma is viscous and erupts explosively; basalt lava spreads in wide flows."
GARDEN = "Tomatoes need full sun, deep watering twice a week and a stake to climb."
GERMAN = "Die Straßenbahn fährt über die Brücke zum Bahnhof, jeden Morgen um sieben Uhr."
ANA, BOB = collections_for("ana")[0], collections_for("bob")[0]


@pytest.fixture
def store(open_db, tmp_path):
    opened = Store(tmp_path / "documents", "fake", registry=open_db("documents.sqlite"))
    yield opened
    opened.close()


def _add(store: Store, tmp_path, name: str, pieces, collection: str = ANA, embed=None):
    source = tmp_path / name
    source.write_text("\n".join(p[0] for p in pieces))
    parsed = Parsed("text", tuple(pieces))
    return store.add(source, name, parsed, collection, embed or FakeEmbedder().embed)


def _search(store: Store, question: str, collections) -> list[str]:
    [vector] = FakeEmbedder().embed([question])
    return [h.name for h in store.search(question, vector, collections)]


def test_keyword_search_ranks_the_chunks_with_the_words_in_any_language(store, tmp_path):
    for name, text in (("volcano.txt", VOLCANO), ("garden.txt", GARDEN), ("tram.txt", GERMAN)):
        _add(store, tmp_path, name, [(text, "line 1", None)])
    names = {c: store.registry.name_of(c) for c in store.registry.chunk_ids(ANA)}
    assert [names[c] for c in store.keyword("why is rhyolite magma viscous?", [ANA])][:1] == [
        "volcano.txt"
    ]
    # Not stemmed away or split: a German word with ß and an umlaut is found as written.
    assert [names[c] for c in store.keyword("Straßenbahn Brücke", [ANA])] == ["tram.txt"]
    # Words that are syntax to FTS5 or to_tsquery are only words here.
    assert store.keyword('NEAR NOT "col:" (x) & | !', [ANA]) == []
    assert store.keyword("?!", [ANA]) == []
    # Hybrid: the vector and keyword rankings fused, the best document first.
    assert _search(store, "How often should tomatoes get deep watering?", [ANA])[0] == "garden.txt"


def test_an_interrupted_ingest_is_neither_listed_nor_searched_until_finished(
    store, tmp_path, monkeypatch
):
    monkeypatch.setattr(rag, "BATCH", 1)  # one chunk per write: the crash lands between two
    pieces = [(f"{VOLCANO} Part {i}.", f"page {i + 1}", None) for i in range(3)]
    embed = FakeEmbedder().embed

    def crash_on_the_second_batch(texts):
        if crash_on_the_second_batch.calls == 1:
            raise RuntimeError("killed")
        crash_on_the_second_batch.calls += 1
        return embed(texts)

    crash_on_the_second_batch.calls = 0
    with pytest.raises(RuntimeError):
        _add(store, tmp_path, "volcano.txt", pieces, embed=crash_on_the_second_batch)
    [doc] = store.documents([ANA])
    assert doc.status == "ingesting"
    sql, chroma = store.chunk_ids(ANA)
    assert len(sql) == 1 and sql == chroma  # the first chunk is in, in both stores
    assert not store.has_documents([ANA])
    assert _search(store, "rhyolite magma", [ANA]) == []  # found, but never cited
    # Ingesting the file again finishes it, adding only what was missing.
    doc, added = _add(store, tmp_path, "volcano.txt", pieces)
    assert doc.status == "complete" and doc.chunks == 3 and added == 2
    assert (
        store.has_documents([ANA]) and _search(store, "rhyolite magma", [ANA])[0] == "volcano.txt"
    )


def test_collections_stay_their_owners_even_for_the_same_file(store, tmp_path):
    _add(store, tmp_path, "volcano.txt", [(VOLCANO, "line 1", None)], ANA)
    assert _search(store, "rhyolite magma", collections_for("bob")) == []
    assert store.keyword("rhyolite magma", collections_for("bob")) == []
    assert store.documents(collections_for("bob")) == []
    # Bob indexes the same bytes under his own name: his own document, his own chunks.
    _add(store, tmp_path, "bobs-volcano.txt", [(VOLCANO, "line 1", None)], BOB)
    assert _search(store, "rhyolite magma", [BOB]) == ["bobs-volcano.txt"]
    assert _search(store, "rhyolite magma", [ANA]) == ["volcano.txt"]
    # Ana deleting hers leaves Bob's whole: listed, searched by words and by vector.
    [mine] = store.documents([ANA])
    store.delete(ANA, mine.doc_id)
    assert [d.name for d in store.documents([BOB])] == ["bobs-volcano.txt"]
    assert len(store.keyword("rhyolite magma", [BOB])) == 1
    assert _search(store, "rhyolite magma", [BOB]) == ["bobs-volcano.txt"]
    assert _search(store, "rhyolite magma", [ANA]) == []


# documents.sqlite as releases before the registry's migrations left it.
UNNUMBERED = """
CREATE TABLE documents (
    doc_id TEXT NOT NULL, collection TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,
    bytes INTEGER NOT NULL, chunks INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ('ingesting', 'complete')),
    added REAL NOT NULL, path TEXT NOT NULL, PRIMARY KEY (collection, doc_id));
CREATE TABLE chunks (
    chunk_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, collection TEXT NOT NULL,
    position INTEGER NOT NULL, location TEXT NOT NULL, start_s REAL, text TEXT NOT NULL);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, content='chunks', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts (rowid, text) VALUES (new.rowid, new.text); END;
INSERT INTO documents VALUES ('d1', 'user-ana', 'old.txt', 'text', 10, 1, 'complete', 1.0, 'p');
INSERT INTO chunks VALUES ('c1', 'd1', 'user-ana', 0, 'line 1', NULL, 'rhyolite magma');
"""


def test_a_documents_file_from_before_the_migrations_is_adopted_and_rekeyed(tmp_path):
    import sqlite3

    from assistant.knowledge import registry

    path = tmp_path / "documents.sqlite"
    with sqlite3.connect(path) as old:
        old.executescript(UNNUMBERED)
    opened = registry.open_registry(path)
    assert opened.db.one("SELECT MAX(version) FROM documents_schema_version") == (
        len(registry.MIGRATIONS),
    )
    assert [d.name for d in opened.documents([ANA])] == ["old.txt"]
    assert opened.keyword("magma", [ANA]) == ["c1"]  # the full-text index was rebuilt
    opened.add_chunks([registry.ChunkRow("c1", "d1", BOB, 0, "line 1", None, "rhyolite magma")])
    assert opened.keyword("magma", [BOB]) == ["c1"]  # the same id in another collection
    opened.close()
