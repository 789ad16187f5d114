"""Text the browser renders as Markdown, made unable to fetch or run anything.

Replies repeat what documents and models say, and neither is ours: an
image in Markdown makes the browser fetch its URL the moment it is shown
(a tracking pixel, or the chat leaked in a query string), and raw HTML
could script. Gradio's Chatbot already strips scripts (DOMPurify) but lets
``<img>`` through, so images are the thing to stop, in every spelling:
inline ``![a](u)``, nested ``![a[b]](u)``, reference-style ``![a][r]`` with
``[r]: u`` anywhere, and ``<img>``. Every one of them starts with ``![`` or
with a tag, so escaping those two is complete where pattern-matching whole
images was not: the text shows as written and no image is ever parsed.
Used for live replies and for saved ones when a chat is reopened alike.
"""

from __future__ import annotations

import re


def safe_markdown(text: str) -> str:
    """``text`` as Markdown that cannot load a remote image or open an HTML tag."""
    # "!" then an escaped "[": CommonMark's images all begin with an unescaped "![".
    text = text.replace("![", "!\\[")
    # Only what could open a tag is escaped, so "a < b" and "x -> y" read as written.
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)
