"""``python -m tests.security.serve_fake``: the real ``serve()`` (as ``python -m assistant
serve`` runs it: uvicorn, its signals, its shutdown) with the fast tier's fake models.

ASSISTANT_HOME and GRADIO_SERVER_PORT say where, as for the real command;
FAKE_REPLY_S makes each chat reply take that long (a request still running
when the server is told to stop).
"""

from __future__ import annotations

import os
import time

from assistant.flow.service import Assistant
from assistant.settings import Settings
from assistant.web.server import serve
from tests.conftest import FakeChat, make_assistant


class _SlowChat(FakeChat):
    def stream(self, request, cancel=None):
        deadline = time.monotonic() + float(os.environ.get("FAKE_REPLY_S") or 0)
        while time.monotonic() < deadline and not (cancel and cancel.is_set()):
            time.sleep(0.05)
        yield from super().stream(request, cancel)


def main() -> None:
    chat = _SlowChat()
    Assistant.from_settings = classmethod(lambda cls, s, progress=print: make_assistant(s, chat))
    serve(Settings.from_env())


if __name__ == "__main__":
    main()
