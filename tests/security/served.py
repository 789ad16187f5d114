"""A served app on loopback, as an attacker meets it: HTTP only, fake models.

The app is built exactly as `make run` builds it (assistant/web/server.py: the
Gradio UI mounted on FastAPI with /v1 and the file gate), with the fast
tier's fake chat model so no weights are needed, and run by uvicorn on a
port of this worktree's range. The helpers speak Gradio's wire protocol
(queue/join + queue/data, call/<api>) the way a hostile client would.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest

PORTS = range(7900, 7950)


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 7900-7949")


@dataclass
class Served:
    url: str
    assistant: object
    settings: object

    def browser(self, **kwargs) -> httpx.Client:
        """A fresh browser: it loads the page first, as a browser does, and keeps cookies."""
        client = httpx.Client(base_url=self.url, timeout=60, **kwargs)
        client.get("/config")
        return client


@contextlib.contextmanager
def serve(settings, fake_chat=None, fakes=None):
    import uvicorn

    from assistant.flow.service import Assistant
    from assistant.web.server import build_server
    from tests.conftest import FakeChat, make_assistant

    chat = fake_chat or FakeChat()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            Assistant,
            "from_settings",
            classmethod(lambda cls, s, progress=print: make_assistant(s, chat, fakes)),
        )
        app, assistant = build_server(settings, progress=lambda m: None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", assistant, settings)
    finally:
        server.should_exit = True
        thread.join(15)


def file_data(path: str) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}, "orig_name": "x.txt"}


def dependency(client: httpx.Client, api_name: str) -> tuple[int, list[int], dict]:
    """(fn index, input component ids, components by id) of an event, from /config."""
    config = client.get("/config").json()
    components = {c["id"]: c for c in config["components"]}
    for i, dep in enumerate(config["dependencies"]):
        if dep.get("api_name") == api_name:
            return dep.get("id", i), dep["inputs"], components
    raise KeyError(api_name)


def join(
    client: httpx.Client, api_name: str, values: dict[int, object], session: str | None = None
) -> tuple[int, str]:
    """Run an event through the queue with ``values`` at input positions; (status, all output).

    Every other input has its component's value as the page shows it.
    """
    fn, inputs, components = dependency(client, api_name)
    data = [
        values[i] if i in values else components[c].get("props", {}).get("value")
        for i, c in enumerate(inputs)
    ]
    session = session or uuid.uuid4().hex[:10]  # a page load: its components' state
    joined = client.post(
        "/gradio_api/queue/join",
        json={
            "data": data,
            "fn_index": fn,
            "session_hash": session,
            "event_data": None,
            "trigger_id": None,
        },
    )
    if joined.status_code != 200:
        return joined.status_code, joined.text
    lines = []
    with client.stream(
        "GET", "/gradio_api/queue/data", params={"session_hash": session}, timeout=60
    ) as stream:
        for line in stream.iter_lines():
            lines.append(line)
            if '"process_completed"' in line or '"close_stream"' in line:
                break
    return 200, "\n".join(lines)


def call(client: httpx.Client, api_name: str, data: list) -> tuple[int, str]:
    """Gradio's REST route: POST /gradio_api/call/<api>, then read its event stream."""
    posted = client.post(f"/gradio_api/call/{api_name}", json={"data": data})
    if posted.status_code != 200:
        return posted.status_code, posted.text
    event = posted.json()["event_id"]
    got = client.get(f"/gradio_api/call/{api_name}/{event}", timeout=60)
    return got.status_code, got.text


def paths_in_output(text: str) -> list[str]:
    """Every file path the server handed back in an event's output."""
    found = []
    for line in text.splitlines():
        body = line.removeprefix("data:").strip()
        if body.startswith(("{", "[")):
            with contextlib.suppress(ValueError):
                found += paths_in(json.loads(body))
    return found


def paths_in(data) -> list[str]:
    """Every {"path": ...} at any depth (the tests' own copy, so they run against any version)."""
    found, stack = [], [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("path"), str):
                found.append(node["path"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
