"""A stand-in for ``models.llama_server`` in the fast tier: same command line, same wire.

``python tests/llama_stub.py --port N [--log FILE]`` serves ``/health`` and
llama.cpp's OpenAI-compatible ``/v1/completions`` with server-sent events.
The prompt arrives as token ids (one per character, as tests' CharTokenizer
makes them); the reply is the last user line reversed, one character per
event, then a usage event. A prompt whose last user line contains "forever"
streams until the client hangs up (or max_tokens). Each request body is
appended to ``--log`` as a JSON line, so tests see how they were asked.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", default="")
    parser.add_argument("--env", default="")  # the OpenMP settings it was started with
    args, _ = parser.parse_known_args()
    if args.env:
        with open(args.env, "w") as f:
            json.dump({k: v for k, v in os.environ.items() if "OMP" in k}, f)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"status": "ok"}'
            self.send_response(200 if self.path.endswith("/health") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if args.log:
                with open(args.log, "a") as f:
                    f.write(json.dumps(req) + "\n")
            text = "".join(chr(i) for i in req["prompt"])
            last = [ln for ln in text.splitlines() if ln.startswith("user: ")][-1][6:]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            n = 0
            try:
                while n < req["max_tokens"] and (n < len(last) or "forever" in last):
                    piece = last[::-1][n % len(last)]
                    self._event({"choices": [{"index": 0, "text": piece, "finish_reason": None}]})
                    n += 1
                    time.sleep(0.01)
                self._event(
                    {
                        "choices": [],
                        "usage": {
                            "prompt_tokens": len(req["prompt"]),
                            "completion_tokens": n,
                            "total_tokens": n,
                        },
                    }
                )
                self.wfile.write(b"data: [DONE]\n\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _event(self, body: dict) -> None:
            body = {
                "id": "stub",
                "object": "text_completion",
                "created": 0,
                "model": "stub",
                **body,
            }
            self.wfile.write(b"data: " + json.dumps(body).encode() + b"\n\n")
            self.wfile.flush()

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
