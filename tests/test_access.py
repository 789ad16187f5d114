"""Access: login, per-user request rate, daily $ quota, private uploads, and how refusals read."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from assistant.accounting.costs import Cost
from assistant.accounting.ledger import Finished, Started
from assistant.accounting.limits import RateLimiter
from assistant.settings import Settings
from models.base import BadInput, RateLimited, Request


def test_the_rate_limit_is_per_user_and_a_minute_long():
    now = [1000.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("ana")
    with pytest.raises(RateLimited, match="3 in the last minute, the limit is 3.*in 60 s"):
        limiter.check("ana")
    limiter.check("bob")  # others are not held up by ana
    now[0] += 59.0
    with pytest.raises(RateLimited, match="in 1 s"):
        limiter.check("ana")
    now[0] += 1.0
    limiter.check("ana")  # the oldest request has left the window


def test_over_the_rate_the_request_is_refused_and_recorded(assistant, fake_chat):
    assistant.limiter = RateLimiter(2)
    outcomes = [assistant.ask(Request(text=f"hi {i}", user="ana")) for i in range(3)]
    assert [o.status for o in outcomes] == ["ok", "ok", "refused"]
    assert outcomes[2].error_type == "RateLimited" and len(fake_chat.seen) == 2
    row = assistant.ledger.get(outcomes[2].request_id)
    assert row["status"] == "refused" and row["user"] == "ana"


def _spend(assistant, user: str, usd: float) -> None:
    assistant.ledger.start(Started("paid-" + user, "s", "ui", "text", "m", "x", 1.0, user=user))
    cost = Cost("cpu", 1.0, 10.0, "estimate", usd, None, None)
    assistant.ledger.finish(
        Finished("paid-" + user, "ok", None, 0, 0, 1, 1, 1, "tokens", "cpu", None, cost)
    )


def test_the_daily_quota_comes_from_the_ledger_per_user(assistant, fake_chat):
    assistant.settings = replace(assistant.settings, daily_quota_usd=0.01)
    _spend(assistant, "ana", 0.02)
    refused = assistant.ask(Request(text="one more?", user="ana"))
    assert refused.status == "refused" and refused.error_type == "BudgetExceeded"
    assert "spent $0.02 today, the daily quota of $0.01" in refused.error
    assert assistant.ask(Request(text="hello", user="bob")).status == "ok"


def test_auth_is_read_from_the_environment_and_a_bad_value_is_named():
    settings = Settings.from_env({"ASSISTANT_AUTH": "ana:s3cret, bob:pw:with:colons"})
    assert settings.auth == (("ana", "s3cret"), ("bob", "pw:with:colons"))
    for bad in ("ana", "ana:", ":pw", "ana:pw,,"):
        with pytest.raises(BadInput, match="user:password pairs"):
            Settings.from_env({"ASSISTANT_AUTH": bad})
    with pytest.raises(BadInput, match="ASSISTANT_RATE_LIMIT"):
        Settings.from_env({"ASSISTANT_RATE_LIMIT": "lots"})


def test_with_auth_the_ui_needs_a_login_and_the_api_answers_429_when_limited(tmp_path):
    from fastapi.testclient import TestClient

    from assistant.web.server import build_server

    settings = Settings(home=tmp_path / "home", auth=(("ana", "s3cret"),), rate_limit=1)
    app, assistant = build_server(settings, progress=lambda m: None)
    client = TestClient(app, base_url="http://127.0.0.1")
    assert client.get("/config").status_code == 401  # the UI's config needs a login
    login = client.post("/login", data={"username": "ana", "password": "wrong"})
    assert login.status_code == 400
    login = client.post("/login", data={"username": "ana", "password": "s3cret"})
    assert login.status_code == 200 and client.get("/config").status_code == 200
    # No MCP server behind a login: its calls could not log in (assistant/web/ui/tools.py).
    assert client.get("/gradio_api/mcp/schema").status_code == 404
    body = {"model": "auto", "user": "ana", "messages": [{"role": "user", "content": ""}]}
    key = {"Authorization": "Bearer ana:s3cret"}  # /v1 behind a login needs one (#17)
    assert client.post("/v1/chat/completions", json=body).status_code == 401
    assert client.post("/v1/chat/completions", json=body, headers=key).status_code == 400
    limited = client.post("/v1/chat/completions", json=body, headers=key)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"


def test_public_mode_lets_pictures_through_only_from_models_with_a_checker():
    from assistant.accounting.limits import check_public
    from models.base import Refused

    public = Settings(home=Path("/nonexistent"), public=True)
    check_public(public, "image_generation", "diffusers")  # it loads the checker itself
    check_public(public, "text", "ctranslate2")
    with pytest.raises(Refused, match="no checker"):
        check_public(public, "image_generation", "demo-diffusion")
    check_public(Settings(home=Path("/nonexistent")), "image_generation", "demo-diffusion")


def test_an_upload_is_served_only_to_the_browser_that_sent_it(tmp_path):
    from fastapi.testclient import TestClient

    from assistant.web.server import build_server

    settings = Settings(home=tmp_path / "home")
    app, _ = build_server(settings, progress=lambda m: None)
    ana, bob = (TestClient(app, base_url="http://127.0.0.1") for _ in range(2))
    upload = {"files": ("scan.txt", b"my payslip", "text/plain")}
    sent = ana.post("/gradio_api/upload", files=upload)
    [path] = sent.json()
    assert Path(path).is_relative_to(settings.uploads_dir)
    assert "assistant_session" in sent.cookies
    assert ana.get(f"/gradio_api/file={path}").content == b"my payslip"
    # Another browser gets what a missing file gets, by either route and any spelling.
    spellings = (path, path.replace("/uploads/", "/uploads/./../uploads/"))
    for route in ("/gradio_api/file=", "/gradio_api/file/"):
        for spelled in spellings:
            assert bob.get(route + spelled).status_code == 404, (route, spelled)
    bob.cookies.set("assistant_session", "guessed")
    assert bob.get(f"/gradio_api/file={path}").status_code == 404
    # After a restart the owner still gets it and nobody else does.
    again, _ = build_server(settings, progress=lambda m: None)
    local = "http://127.0.0.1"  # TestClient's own "testserver" is no allowed host name
    assert TestClient(again, base_url=local).get(f"/gradio_api/file={path}").status_code == 404
    ana_again = TestClient(
        again, base_url=local, cookies={"assistant_session": ana.cookies["assistant_session"]}
    )
    assert ana_again.get(f"/gradio_api/file={path}").content == b"my payslip"
