"""A small OpenAI-compatible chat server on loopback, for testing the remote backend.

It speaks the wire format real servers (vLLM, LocalAI, OpenAI) use:
``POST /v1/chat/completions`` with server-sent events when streaming. The
requested model name picks a behaviour, so one server covers every case:

- ``echo``: replies "You said: <last user message>", word by word, with a usage chunk
- ``no-usage``: the same without the usage chunk (some servers ignore stream_options)
- ``slow``: waits ``delay`` seconds before answering at all
- ``stall``: sends one piece, then waits ``delay`` seconds
- ``endless``: streams until the client hangs up (records that it did)
- ``garbage``: a 200 whose events are not JSON
- ``html``: a 200 HTML page instead of an event stream
- ``boom``: HTTP 500 with an OpenAI-shaped error body
- anything else: HTTP 404 "model not found", as vLLM answers
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubServer:
    def __init__(self, delay: float = 3.0):
        self.delay = delay
        self.seen: list[dict] = []  # request bodies, in arrival order
        self.hung_up = threading.Event()  # an ``endless`` client went away
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _chunk(content: str | None = None, usage: dict | None = None) -> bytes:
    body = {
        "id": "stub",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "stub",
        "choices": []
        if content is None
        else [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _handler(server: StubServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, message: str) -> None:
            body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
            self._send(status, json.dumps(body).encode(), "application/json")

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != "/v1/chat/completions":
                return self._error(404, f"no route {self.path}")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            server.seen.append(body)
            model = body.get("model")
            if model == "slow":
                time.sleep(server.delay)
            if model == "boom":
                return self._error(500, "the GPU fell over")
            if model == "html":
                return self._send(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
            if model not in ("echo", "no-usage", "slow", "stall", "endless", "garbage"):
                return self._error(404, f"The model `{model}` does not exist.")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if model == "garbage":
                self.wfile.write(b"data: {this is not json\n\n")
                return
            if model == "endless":
                try:
                    while True:
                        self.wfile.write(_chunk("tick "))
                        self.wfile.flush()
                        time.sleep(0.02)
                except OSError:
                    server.hung_up.set()
                    return
            last = body["messages"][-1]["content"]
            words = f"You said: {last}".split(" ")
            for i, word in enumerate(words):
                self.wfile.write(_chunk(word if i == 0 else " " + word))
                self.wfile.flush()
                if model == "stall":
                    time.sleep(server.delay)
            if model != "no-usage":
                prompt = sum(len(m["content"].split()) for m in body["messages"])
                self.wfile.write(
                    _chunk(
                        usage={
                            "prompt_tokens": prompt,
                            "completion_tokens": len(words),
                            "total_tokens": prompt + len(words),
                        }
                    )
                )
            self.wfile.write(b"data: [DONE]\n\n")

    return Handler
