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
- ``midfail``: one piece, then an error event (as vLLM and this app send after a 200)
- ``html``: a 200 HTML page instead of an event stream
- ``boom``: HTTP 500 with an OpenAI-shaped error body
- anything else: HTTP 404 "model not found", as vLLM answers

A chat message whose content is parts (text and ``image_url``, as a vision
model gets) is echoed as its text plus "[N pictures]". The other families'
routes (models/remote_media.py) answer for the models named in ``MEDIA``,
and with a wrong shape for ``wrong``; ``GET /v1/models`` lists every model,
or answers ``models_reply`` when a test sets it (a wrong shape to probe).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAT = ("echo", "no-usage", "slow", "stall", "endless", "garbage", "midfail")
MEDIA = {
    "vec": "/v1/embeddings",
    "whisper": "/v1/audio/transcriptions",
    "painter": "/v1/images/generations",
}
# A 1×1 PNG, what the painter draws.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class StubServer:
    def __init__(self, delay: float = 3.0):
        self.delay = delay
        self.seen: list[dict] = []  # request bodies, in arrival order
        self.hung_up = threading.Event()  # an ``endless`` client went away
        self.models_reply: tuple[int, bytes, str] | None = None  # GET /v1/models, when set
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

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != "/v1/models":
                return self._error(404, f"no route {self.path}")
            if server.models_reply is not None:
                return self._send(*server.models_reply)
            data = [{"id": m, "object": "model"} for m in (*CHAT, *MEDIA)]
            self._send(
                200, json.dumps({"object": "list", "data": data}).encode(), "application/json"
            )

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path in MEDIA.values():
                return _media(self, server)
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
            if model not in CHAT:
                return self._error(404, f"The model `{model}` does not exist.")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if model == "garbage":
                self.wfile.write(b"data: {this is not json\n\n")
                return
            if model == "midfail":
                self.wfile.write(_chunk("Half"))
                self.wfile.write(b'data: {"error": {"message": "the model crashed"}}\n\n')
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
            last = _words(body["messages"][-1]["content"])
            words = f"You said: {last}".split(" ")
            for i, word in enumerate(words):
                self.wfile.write(_chunk(word if i == 0 else " " + word))
                self.wfile.flush()
                if model == "stall":
                    time.sleep(server.delay)
            if model != "no-usage":
                prompt = sum(len(_words(m["content"]).split()) for m in body["messages"])
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


def _words(content) -> str:
    """A message's words; parts (a vision request) as their text plus how many pictures."""
    if isinstance(content, str):
        return content
    text = " ".join(p["text"] for p in content if p["type"] == "text")
    pictures = sum(p["type"] == "image_url" and "base64," in p["image_url"]["url"] for p in content)
    return f"{text} [{pictures} pictures]"


def _media(handler, server: StubServer) -> None:
    """/v1/embeddings, /v1/audio/transcriptions, /v1/images/generations."""
    raw = handler.rfile.read(int(handler.headers["Content-Length"]))
    if handler.path.endswith("/transcriptions"):  # multipart: find the model field's value
        model = raw.split(b'name="model"')[1].split(b"\r\n\r\n")[1].split(b"\r\n")[0].decode()
        body = {"model": model, "bytes": len(raw)}
    else:
        body = json.loads(raw)
    server.seen.append(body)
    model = body.get("model")
    if model == "wrong":  # 200, JSON, but not the shape the route promises
        return handler._send(200, b'{"result": "ok"}', "application/json")
    if MEDIA.get(model) != handler.path:
        return handler._error(404, f"The model `{model}` does not exist.")
    if model == "vec":
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [len(t), len(t.split()), 1.0]}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts)
        reply = {"object": "list", "data": data, "usage": {"prompt_tokens": tokens}}
    elif model == "whisper":
        segments = [{"id": 0, "start": 0.0, "end": 2.5, "text": " hello from the stub"}]
        reply = {
            "text": "hello from the stub",
            "language": "en",
            "duration": 2.5,
            "segments": segments,
        }
    else:
        reply = {"created": 0, "data": [{"b64_json": base64.b64encode(PNG).decode()}]}
    handler._send(200, json.dumps(reply).encode(), "application/json")
