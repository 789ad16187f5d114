"""The model endpoint of the scale test and bench: a second instance of this app, serving /v1.

    python -m tests.scale_worker PORT

It is this app with the fast tier's fakes (no weights): its chat
model streams slowly when asked to ("slowly"), so a replica can be killed
mid-answer, and otherwise says how many earlier turns it was given and the
first one, so a test sees a chat's history arrive through another replica.
Its vision model says the size and colour of the picture it was sent, so a
test sees a picture arrive through /v1's image_url parts.
The replicas themselves are `python -m assistant serve`, as deployed (see
bench/stack.py). Run from the repository root, as bench/ and tests/ are.
"""

from __future__ import annotations

import sys
import time

from models.base import Adapter, Result, Usage

SLOW_WORDS = 60  # a slow reply: 60 words, 0.1 s apart


class EndpointChat(Adapter):
    family = "text"
    tasks = ("text",)
    concurrent_safe = True  # a served model answers several callers at once

    def load(self) -> None:
        pass

    def stream(self, request, cancel=None):
        turns = [m for m in request.history if m.role != "system"]
        if "slowly" in request.text:
            reply, delay = " ".join(f"word{i}" for i in range(SLOW_WORDS)), 0.1
        else:
            first = turns[0].content if turns else "none"
            reply, delay = f"Heard {len(turns)} earlier turns; the first was: {first}", 0.0
        for i, word in enumerate(reply.split()):
            if cancel is not None and cancel.is_set():
                break
            time.sleep(delay)
            yield word if i == 0 else " " + word
        words_in = len(request.text.split()) + sum(len(m.content.split()) for m in turns)
        yield Result(text=reply, usage=Usage(words_in, len(reply.split()), "tokens"))


class EndpointVision(Adapter):
    family = "vision"
    tasks = ("vision",)
    concurrent_safe = True

    def load(self) -> None:
        pass

    def run(self, request):
        from PIL import Image

        with Image.open(request.attachments[0]) as picture:
            size, colour = picture.size, picture.convert("RGB").getpixel((0, 0))
        text = f"The endpoint sees a {size[0]}x{size[1]} picture whose corner is RGB{colour}."
        return Result(text=text, usage=Usage(len(request.text.split()), len(text.split())))


def main(port: int) -> None:
    import uvicorn

    from assistant.flow.service import Assistant
    from assistant.settings import Settings
    from assistant.web.server import build_server
    from tests.conftest import make_assistant

    chat, vision = EndpointChat(), EndpointVision()
    Assistant.from_settings = classmethod(
        lambda cls, s, progress=print: make_assistant(s, chat, {"vision": vision})
    )
    app, _ = build_server(Settings.from_env(), progress=lambda m: None)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]))
