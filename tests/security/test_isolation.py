"""#17 high 2 and 3: a kept document runs no script here and only its owner reads it;
the chat handler sees the login, so chats, the session panel and Costs are per user.

Replayed over HTTP against a served app with two logins (ana, bob).
"""

from __future__ import annotations

import json

import httpx
import pytest

from assistant.knowledge.rag import collections_for
from assistant.settings import Settings
from tests.conftest import FakeChat
from tests.security.served import file_data, join, paths_in_output, serve

EVIL = b"<html><body><script>fetch('/config')</script><p>The unicorn code is 4417.</p></body>"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    chat = FakeChat()
    settings = Settings(
        home=tmp_path_factory.mktemp("iso") / "home", auth=(("ana", "pw-ana"), ("bob", "pw-bob"))
    )
    with serve(settings, fake_chat=chat) as served:
        yield served, chat


def login(served, user: str, password: str) -> httpx.Client:
    client = served.browser()
    assert client.post("/login", data={"username": user, "password": password}).status_code == 200
    client.get("/config")
    return client


def test_a_kept_html_document_downloads_and_only_its_owner_gets_it(app):
    served, _ = app
    ana, bob = login(served, "ana", "pw-ana"), login(served, "bob", "pw-bob")
    [up] = ana.post("/gradio_api/upload", files={"files": ("evil.html", EVIL, "text/html")}).json()
    status, output = join(ana, "index_documents", {0: [file_data(up)], 1: False})
    assert status == 200 and "process_completed" in output
    [doc] = served.assistant.store.documents(collections_for("ana"))
    got = ana.get(f"/gradio_api/file={doc.path}")
    assert got.status_code == 200 and got.content == EVIL
    # Bytes to save, never a page of this origin whose script could read /config.
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment")
    assert got.headers["x-content-type-options"] == "nosniff"
    for other in (bob, httpx.Client(base_url=served.url)):  # another login; no login
        for route in ("/gradio_api/file=", "/gradio_api/file/"):
            refused = other.get(route + doc.path)
            assert refused.status_code in (401, 404) and b"unicorn" not in refused.content


def test_the_chat_runs_as_the_logged_in_user_with_a_real_session(app):
    served, chat = app
    ledger = served.assistant.ledger
    for user, password in (("ana", "pw-ana"), ("bob", "pw-bob")):
        client = login(served, user, password)
        status, output = join(client, "chat", {0: {"text": f"hello from {user}", "files": []}})
        assert status == 200 and '"success":true' in output.replace(" ", ""), output[-500:]
        assert chat.seen[-1].user == user
        row = ledger.rows(limit=1)[0]
        assert row["user"] == user and row["session_id"] not in ("anonymous", "", None)
        # The saved chat is the user's own.
        assert [c.title for c in served.assistant.chats.list(user)], user


def test_costs_export_holds_only_the_users_own_rows(app):
    served, _ = app
    bob = login(served, "bob", "pw-bob")
    join(bob, "chat", {0: {"text": "a question of bob's", "files": []}})
    status, output = join(bob, "export_json", {})
    assert status == 200
    [path] = [p for p in paths_in_output(output) if p.endswith(".json")]
    rows = json.loads(bob.get(f"/gradio_api/file={path}").content)
    assert rows and {r["user"] for r in rows} == {"bob"}
    assert any(r["user"] == "ana" for r in served.assistant.ledger.rows())  # ana's exist
