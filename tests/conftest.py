"""Fixtures for the fast tier: a fake chat model and an Assistant built around it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from assistant.accounting.ledger import Ledger
from assistant.catalog.backends import build_adapter
from assistant.catalog.entries import Catalog
from assistant.database import open_database
from assistant.flow.pool import Pool
from assistant.flow.service import Assistant
from assistant.knowledge import grounding
from assistant.settings import Settings
from models.base import Adapter, Request, Result, Usage
from tests import pg


class FakeChat(Adapter):
    """Replays canned replies word by word and reports real word counts as usage."""

    family = "text"
    tasks = ("text",)

    def __init__(self, replies=("Paris is the capital of France.",), fail: Exception | None = None):
        self.replies = list(replies)
        self.fail = fail
        self.seen: list[Request] = []  # every request it was given, for assertions
        self.loads = 0

    def load(self) -> None:
        self.loads += 1

    def stream(self, request, cancel=None):
        self.seen.append(request)
        if self.fail is not None:
            raise self.fail
        reply = self.replies[(len(self.seen) - 1) % len(self.replies)]
        for i, word in enumerate(reply.split()):
            yield word if i == 0 else " " + word
        words_in = len(request.text.split()) + sum(len(m.content.split()) for m in request.history)
        yield Result(text=reply, usage=Usage(words_in, len(reply.split()), "tokens"))


class FakeASR(Adapter):
    """Hears the same memo in every recording: a speech step with no weights."""

    family, tasks = "asr", ("asr",)
    said = "Buy milk and 2 eggs."

    def load(self) -> None:
        pass

    def run(self, request: Request) -> Result:
        return Result(text=self.said, usage=Usage(3.0, 5, "audio_seconds"))


class FakeEmbedder(Adapter):
    """Bag of hashed words, L2-normalised: texts sharing words have a high cosine.

    Deterministic and instant, so store and routing tests need no weights.
    """

    family = "embed"
    tasks = ("rag",)
    dim = 64

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s  # per batch, so a crash test can land mid-ingest
        self.batches = 0

    def load(self) -> None:
        pass

    def embed(self, texts):
        import hashlib
        import math
        import re
        import time

        self.batches += 1
        time.sleep(self.delay_s)
        out = []
        for text in texts:
            v = [0.0] * self.dim
            for word in re.findall(r"\w{3,}", text.lower()):
                v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            norm = math.sqrt(sum(x * x for x in v)) or 1.0
            out.append([x / norm for x in v])
        return out


@contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Build a tiny random model the same way every run, whatever ran before.

    Inside, torch's generator starts from ``seed``; after, the run's own
    generator is as it was, so building one tiny model never shifts another's.
    An unseeded tiny model fails now and then (the reranker's: one run in twelve).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def fake_chat() -> FakeChat:
    return FakeChat()


@pytest.fixture
def assistant(settings, fake_chat, monkeypatch) -> Assistant:
    """The real catalog, router, pool and ledger; text models are the fake."""
    # The fake embedder's cosines run lower than MiniLM's, for which the
    # sentence threshold was measured: same shared words, about 0.35 vs 0.6.
    monkeypatch.setattr(grounding, "SENTENCE_MATCH", 0.3)
    return make_assistant(settings, fake_chat)


def make_assistant(settings, fake_chat, fakes: dict[str, Adapter] | None = None) -> Assistant:
    """An Assistant whose text and embedding models are fakes (and any family in ``fakes``)."""
    settings.ensure_home()
    catalog = Catalog.load()
    fakes = {"text": fake_chat, **(fakes or {})}

    def factory(model_id: str) -> Adapter:
        entry = catalog.get(model_id)
        if entry.family in fakes:
            return fakes[entry.family]
        if entry.family == "embed":
            return FakeEmbedder()
        return build_adapter(entry, settings)  # unbuilt families fail like production

    pool = Pool(factory, 8192, {e.id: e.memory_mb for e in catalog.entries.values()})
    ledger = Ledger(open_database(settings.database_url, settings.ledger_path))
    return Assistant(settings, catalog, pool, ledger)


@pytest.fixture(scope="session")
def pg_admin_url():
    """One throwaway PostgreSQL cluster for the whole session (tests/pg.py).

    Skipped, with the reason, where PostgreSQL's binaries or psycopg are missing.
    ASSISTANT_TEST_PG_PORT fixes its port; unset, a free one is taken.
    """
    why = pg.missing()
    if why:
        pytest.skip(why)
    with pg.cluster() as url:
        yield url


@pytest.fixture
def pg_url(pg_admin_url):
    """A new empty database in the session's cluster, dropped after the test."""
    url = pg.fresh_database(pg_admin_url)
    yield url
    pg.drop_database(pg_admin_url, url)


@pytest.fixture(params=["sqlite", "postgres"])
def open_db(request, tmp_path):
    """Opens the test's database as a replica would: each call a new Database.

    SQLite: the file ``name`` in tmp_path. PostgreSQL: one new database in the
    session's cluster, whatever the name (skipped without PostgreSQL). Every
    call has connections of its own, so two calls are two replicas.
    """
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    opened = []

    def open_(name: str = "ledger.sqlite"):
        opened.append(open_database(url, tmp_path / name))
        return opened[-1]

    yield open_
    for db in opened:
        db.close()
