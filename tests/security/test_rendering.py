"""#17 medium: a reply can never make the browser fetch an image, live or reopened.

A planted document (or a model) can put Markdown images in a reply; shown,
each is a request to a URL of its author's choosing. The old filter
matched ``![alt](url)`` only; nested brackets and reference-style images
went through, and reopened chats rendered the saved raw reply. Each reply
below goes through the served app (queue/join), and then the chat is
reopened; what the Chatbot receives is rendered with a CommonMark parser
(as the browser's Markdown does) and must hold no <img>.
"""

from __future__ import annotations

import json

import pytest
from markdown_it import MarkdownIt

from assistant.settings import Settings
from models.base import Result, Usage
from tests.conftest import FakeChat
from tests.security.served import join, serve

URL = "http://evil.example/px.png"
PAYLOADS = [
    f"Here: ![x]({URL})",
    f"Nested: ![a[b]]({URL})",
    f"Reference: ![logo][r]\n\n[r]: {URL}",
    f"Reference, short: ![r]\n\n[r]: {URL}",
    f"Tag: <img src={URL}>",
    f"Tag, upper: <IMG SRC='{URL}'>",
    f"Autolink in image: ![<{URL}>](<{URL}>)",
]


class Verbatim(FakeChat):
    """Replies with its text in one piece, newlines kept (reference definitions need them)."""

    def stream(self, request, cancel=None):
        self.seen.append(request)
        reply = self.replies[(len(self.seen) - 1) % len(self.replies)]
        yield reply
        yield Result(text=reply, usage=Usage(1, 1, "tokens"))


def _images(markdown: str) -> list[str]:
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    return [line for line in html.splitlines() if "<img" in line.lower()]


def _contents(output: str) -> list[str]:
    """Every message text the Chatbot was sent in full (streamed diffs aside)."""
    found = []
    for line in output.splitlines():
        if line.startswith("data:"):
            event = json.loads(line[5:])
            stack = [event.get("output", {}).get("data")]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    if isinstance(node.get("content"), str):
                        found.append(node["content"])
                    if node.get("type") == "text" and isinstance(node.get("text"), str):
                        found.append(node["text"])
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve(
        Settings(home=tmp_path_factory.mktemp("render") / "home"), fake_chat=Verbatim(PAYLOADS)
    ) as s:
        yield s


def test_the_payloads_are_images_when_not_sanitized():
    # The test's own check: each payload really is an image to a CommonMark renderer.
    assert all(_images(p) for p in PAYLOADS)


@pytest.mark.parametrize("n", range(len(PAYLOADS)))
def test_no_reply_renders_an_image_live_or_reopened(served, n):
    browser = served.browser()
    page = f"page{n}"
    status, output = join(browser, "chat", {0: {"text": f"tell me {n}", "files": []}}, page)
    live = _contents(output)
    assert status == 200 and any("evil.example" in c for c in live), output[-400:]
    assert not [c for c in live if _images(c)]
    [chat] = [c for c in served.assistant.chats.list("local") if c.title.startswith(f"tell me {n}")]
    status, output = join(browser, "open_chat", {0: chat.id}, page)
    reopened = _contents(output)
    assert any("evil.example" in c for c in reopened), output[-400:]
    assert not [c for c in reopened if _images(c)]
