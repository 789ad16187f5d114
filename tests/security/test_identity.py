"""#17 high 4: who a request acts as comes from its credential, never from its body;
rate limits and quotas then hold per user, and strangers in public mode do not share one.

Replayed over HTTP against served apps.
"""

from __future__ import annotations

import httpx
import pytest

from assistant.settings import Settings
from tests.conftest import FakeChat
from tests.security.served import join, serve

ASK = {"model": "auto", "messages": [{"role": "user", "content": "What is the unicorn code?"}]}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("ident")
    chat = FakeChat()
    settings = Settings(
        home=root / "home",
        rate_limit=3,
        auth=(("ana", "pw-ana"), ("bob", "pw-bob"), ("cy", "pw-cy")),
    )
    with serve(settings, fake_chat=chat) as served:
        private = root / "ana-notes.txt"
        private.write_text("The unicorn code is 4417. Only ana knows the unicorn code.")
        assert served.assistant.ingest(private, user="ana").status == "ok"
        yield served, chat


def test_v1_behind_a_login_needs_a_credential(app):
    served, chat = app
    v1 = httpx.Client(base_url=served.url)
    for headers in ({}, {"Authorization": "Bearer ana:wrong"}, {"Authorization": "Bearer ana"}):
        got = v1.post("/v1/chat/completions", json={**ASK, "user": "ana"}, headers=headers)
        assert got.status_code == 401, headers
        assert got.json()["error"]["code"] == "invalid_api_key"
    assert chat.seen == []


def test_the_body_user_never_reads_another_users_documents(app):
    served, chat = app
    v1 = httpx.Client(base_url=served.url, headers={"Authorization": "Bearer bob:pw-bob"})
    got = v1.post("/v1/chat/completions", json={**ASK, "user": "ana"})
    assert got.status_code == 200, got.text
    seen = chat.seen[-1]
    assert seen.user == "bob"
    assert "4417" not in seen.text and all("4417" not in m.content for m in seen.history)
    row = served.assistant.ledger.rows(limit=1)[0]
    assert row["user"] == "bob" and row["session_id"] == "api-bob/ana"


def test_the_rate_limit_cannot_be_dodged_by_changing_the_body_user(app):
    served, _ = app
    v1 = httpx.Client(base_url=served.url, headers={"Authorization": "Bearer ana:pw-ana"})
    statuses = [
        v1.post("/v1/chat/completions", json={**ASK, "user": f"u{i}"}).status_code for i in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    # ana's use is ana's: another login is not held up by it.
    other = httpx.Client(base_url=served.url, headers={"Authorization": "Basic Ym9iOnB3LWJvYg=="})
    assert other.post("/v1/chat/completions", json=ASK).status_code == 200  # bob:pw-bob


def test_a_client_cannot_name_its_user_in_a_header(app):
    served, chat = app
    v1 = httpx.Client(
        base_url=served.url,
        headers={"Authorization": "Bearer bob:pw-bob", "X-Assistant-User": "ana"},
    )
    assert v1.post("/v1/chat/completions", json=ASK).status_code in (200, 429)
    assert chat.seen[-1].user == "bob"


def test_in_public_mode_each_browser_has_its_own_quota_chats_and_documents(tmp_path):
    chat = FakeChat()
    with serve(Settings(home=tmp_path / "home", public=True, rate_limit=1), fake_chat=chat) as s:
        first, second = s.browser(), s.browser()
        # The header a client sends is dropped; the gate names the guest.
        first.headers["X-Assistant-User"] = "local"
        replies = [
            join(first, "chat", {0: {"text": f"hello {i}", "files": []}})[1] for i in range(2)
        ]
        assert "Too many requests" in replies[1] and "Too many requests" not in replies[0]
        fresh = join(second, "chat", {0: {"text": "hello", "files": []}})[1]
        assert "Too many requests" not in fresh  # one stranger does not block the next
        users = [r.user for r in chat.seen]
        assert len(set(users)) == 2 and all(u.startswith("guest-") for u in users)
        assert s.assistant.chats.list("local") == []  # nobody's chats pooled under "local"


def test_users_whose_names_differ_in_punctuation_do_not_share_a_collection():
    import re

    from assistant.knowledge.rag import collections_for

    names = ["a.b", "a_b", "a b", "ana", "Ünal", "x" * 80, "x" * 80 + "y"]
    own = [collections_for(n)[0] for n in names]
    assert len(set(own)) == len(names)
    assert own[3] == "user-ana"  # plain names keep their collection
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,61}[A-Za-z0-9]", c) for c in own), own


def test_a_pinned_chat_model_answers_a_document_question_and_says_without_documents(app):
    """#17 low: a pinned model got 400 'does not serve rag' when the question resembled
    a document; it answers, and the route says it did not read the documents."""
    served, chat = app
    notes = served.settings.home / "cy-notes.txt"
    notes.write_text("The unicorn code is 9921. Only cy knows the unicorn code.")
    assert served.assistant.ingest(notes, user="cy").status == "ok"
    v1 = httpx.Client(base_url=served.url, headers={"Authorization": "Bearer cy:pw-cy"})
    # cy's question resembles cy's own document: unpinned, the router would pick retrieval.
    got = v1.post("/v1/chat/completions", json={**ASK, "model": "smollm2-135m-instruct"})
    assert got.status_code == 200, got.text
    reason = got.json()["assistant"]["route"]["reason"]
    assert "without your documents" in reason and "9921" not in chat.seen[-1].text
