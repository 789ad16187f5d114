"""#17 medium: after one MCP call, SIGTERM did not stop the server (60 s+).

The real ``serve()`` runs in its own process (tests/security/serve_fake.py:
fake models, uvicorn and its signals as `python -m assistant serve` has them);
an agent makes one MCP call and keeps its session (and its event stream)
open, as agents do; SIGTERM must still stop the server within seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.security.served import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
def test_sigterm_stops_the_server_after_an_mcp_call(tmp_path, transport):
    pytest.importorskip("mcp")
    port = free_port()
    env = {**os.environ, "ASSISTANT_HOME": str(tmp_path / "home"), "GRADIO_SERVER_PORT": str(port)}
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.security.serve_fake"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, server)
        answer, stopped_s = asyncio.run(_call_then_sigterm(url, transport, server))
        assert "Paris" in answer
        assert stopped_s is not None, "the server still ran 30 s after SIGTERM"
        assert stopped_s < 10, f"the server took {stopped_s:.1f} s to stop"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def _wait_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited while starting"
        try:
            if httpx.get(url + "/v1/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("the server did not start within 120 s")


async def _call_then_sigterm(url: str, transport: str, server: subprocess.Popen):
    """(the tool's answer, seconds from SIGTERM to exit or None), the session still open."""
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.client.streamable_http import streamable_http_client

    if transport == "sse":
        connection = sse_client(url + "/gradio_api/mcp/sse")
    else:
        connection = streamable_http_client(url + "/gradio_api/mcp/")
    async with connection as (read, write, *_):
        async with ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("ask", {"question": "What is the capital of France?"})
            answer = " ".join(c.text for c in result.content if c.type == "text")
            sent = time.monotonic()
            server.send_signal(signal.SIGTERM)
            while server.poll() is None and time.monotonic() - sent < 30:
                await asyncio.sleep(0.1)
            stopped = time.monotonic() - sent if server.poll() is not None else None
            return answer, stopped
