"""#17 medium and low, replayed over HTTP: DNS rebinding (Host), password guessing, the
tools and MCP without the API key, and overload answered with 503/429 and Retry-After.
"""

from __future__ import annotations

import concurrent.futures
import time

import httpx
import pytest

from assistant.settings import Settings
from tests.conftest import FakeChat
from tests.security.served import serve


class SlowChat(FakeChat):
    def stream(self, request, cancel=None):
        time.sleep(0.5)
        yield from super().stream(request, cancel)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    settings = Settings(
        home=tmp_path_factory.mktemp("edges") / "home",
        api_key="k-123",
        auth=(("ana", "pw-ana"),),
        allowed_hosts=("chat.example.com",),
    )
    with serve(settings, fake_chat=SlowChat()) as s:
        yield s


def test_a_rebinding_host_name_is_refused(served):
    port = served.url.rsplit(":", 1)[1]
    for host, status in (
        (f"evil.example:{port}", 400),
        ("rebind.attacker.net", 400),
        (f"127.0.0.1:{port}", 200),
        (f"localhost:{port}", 200),
        ("chat.example.com", 200),
    ):
        got = httpx.get(
            f"{served.url}/v1/models", headers={"Host": host, "Authorization": "Bearer k-123"}
        )
        assert got.status_code == status, (host, got.status_code)


def test_password_guessing_is_throttled_per_address(served):
    client = httpx.Client(base_url=served.url)
    statuses = [
        client.post("/login", data={"username": "ana", "password": f"guess{i}"}).status_code
        for i in range(8)
    ]
    assert statuses[:5] == [400] * 5 and set(statuses[5:]) == {429}
    last = client.post("/login", data={"username": "ana", "password": "pw-ana"})
    assert last.status_code == 429 and int(last.headers["retry-after"]) > 0


def test_the_tools_and_mcp_need_the_api_key(served):
    from tests.security.served import call

    # The same login as a browser, but no key: the tool refuses whichever route is used.
    # Another address than the guesser's above (uvicorn takes X-Forwarded-For from a
    # proxy on loopback, as it would be deployed behind one).
    client = httpx.Client(base_url=served.url, headers={"X-Forwarded-For": "10.1.2.3"})
    assert client.post("/login", data={"username": "ana", "password": "pw-ana"}).status_code == 200
    status, output = call(client, "ask", ["What is the capital of France?", "auto"])
    assert "needs the API key" in output and "Paris" not in output
    keyed = httpx.Client(
        base_url=served.url, cookies=client.cookies, headers={"Authorization": "Bearer k-123"}
    )
    status, output = call(keyed, "ask", ["What is the capital of France?", "auto"])
    assert "Paris" in output
    for path in ("/gradio_api/mcp/", "/gradio_api/mcp/schema"):
        assert httpx.get(f"{served.url}{path}").status_code == 401


def test_v1_overload_is_a_503_with_retry_after(served, monkeypatch):
    import assistant.web.owners

    monkeypatch.setattr(assistant.web.owners, "MAX_API_IN_FLIGHT", 2)
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}

    def ask(_):
        return httpx.post(
            f"{served.url}/v1/chat/completions",
            json=body,
            timeout=60,
            headers={"Authorization": "Bearer k-123"},
        )

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(ask, range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 503} and statuses.count(200) >= 2, statuses
    for a in answers:
        if a.status_code == 503:
            assert a.headers["retry-after"] == "5" and a.json()["error"]["code"] == "busy"


def test_gradio_busy_answers_say_when_to_retry(tmp_path):
    """Gradio's own 503 'Queue is full' (and any 429) passes the gate with Retry-After."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from assistant.web.access import FileAccess
    from assistant.web.owners import UploadOwners

    async def full(request):
        return JSONResponse({"detail": "Queue is full! Please try again later."}, 503)

    inner = Starlette(routes=[Route("/gradio_api/queue/join", full, methods=["POST"])])
    access = FileAccess(tmp_path / "uploads", tmp_path / "owners.sqlite", tmp_path / "kept")
    gate = UploadOwners(inner, access, settings=Settings(home=tmp_path))
    got = TestClient(gate, base_url="http://127.0.0.1").post(
        "/gradio_api/queue/join", json={"data": []}
    )
    assert got.status_code == 503 and got.headers["retry-after"] == "5"
