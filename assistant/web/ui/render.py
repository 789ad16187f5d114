"""How replies, sources, money and units read on the page: one place for the live
chat, a reopened chat and the request panel, so the three never disagree.

Replies repeat what documents and models say, and neither is ours: an
image in Markdown makes the browser fetch its URL the moment it is shown
(a tracking pixel, or the chat leaked in a query string), and raw HTML
could script. Gradio's Chatbot already strips scripts (DOMPurify) but lets
``<img>`` through, so images are the thing to stop, in every spelling:
inline ``![a](u)``, nested ``![a[b]](u)``, reference-style ``![a][r]`` with
``[r]: u`` anywhere, and ``<img>``. Every one of them starts with ``![`` or
with a tag, so escaping those two is complete where pattern-matching whole
images was not: the text shows as written and no image is ever parsed.

Pure functions of strings and numbers (no Gradio), so the sidebar (chats.py)
and the chat (app.py) can both use them without importing each other.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

# A markdown heading at the start of a line: "# Title" ... "###### Title".
_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$", re.MULTILINE)
# A line of "=" under text makes that text a big heading (setext).
_SETEXT_EQ = re.compile(r"^ {0,3}=+[ \t]*$", re.MULTILINE)
# A line of "-" right under text does too; after a blank line it is a rule.
_SETEXT_DASH = re.compile(r"(?<=\S)\n {0,3}-{2,}[ \t]*$", re.MULTILINE)


STOPPED = "\n\n*(stopped: the reply above is what came before Stop)*"


def safe_markdown(text: str) -> str:
    """A reply as markdown that cannot load remote images, inject HTML or shout.

    Answers may repeat what documents contain, and documents are not ours:
    an ``![](http://...)`` would make the browser fetch a URL (a tracking
    pixel, or a leak of the chat in its query), and raw HTML could script.
    A document's headings, repeated in an answer, would render as page-size
    H1/H2 inside a chat bubble: they are shown as bold lines instead.
    """
    # "!" then an escaped "[": CommonMark's images all begin with an unescaped "![",
    # in every spelling (inline, nested, reference-style), so none is ever parsed.
    text = text.replace("![", "!\\[")
    text = _ATX.sub(lambda m: f"**{m.group(1)}**" if m.group(1).strip() else "", text)
    text = _SETEXT_EQ.sub("", text)
    text = _SETEXT_DASH.sub("\n\n---", text)
    # Only what could open a tag is escaped, so "a < b" and "x -> y" read as written.
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text)


def sources(citations) -> str:
    """The numbered sources under an answer; a recording's time plays it from there."""
    lines = []
    for c in citations:
        where = f"{c['source']} — {c['location']}"
        if c.get("start_s") is not None and c.get("path"):
            # A media fragment: the browser starts the recording at that second.
            where = f"[{where}](/gradio_api/file={c['path']}#t={c['start_s']:.1f})"
        lines.append(f"[{c['n']}] {where}")
    return "\n\n**Sources**\n\n" + "\n\n".join(lines) if lines else ""


def usd(value: float | None) -> str:
    """Money as money: "$0.12", "$0.00017", "< $0.000001", never "1.7e-04"."""
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    if value < 0:
        return "-" + usd(-value)
    if value >= 0.01:
        return f"${value:.2f}"
    if value < 1e-6:
        return "< $0.000001"
    # Two significant digits in plain decimals: 4.6e-05 -> $0.000046.
    digits = 1 - math.floor(math.log10(value))
    return f"${value:.{digits}f}"


def _n(value) -> str:
    value = float(value or 0)
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def units_text(unit: str | None, task: str | None, units_in, units_out) -> str:
    """What a request's two counts measure, each with its own unit.

    A family reports one unit name for both counts (models/base.py Usage),
    but the counts on either side of a speech or picture request are not
    the same kind: seconds heard and words written, characters read and
    seconds spoken.
    """
    if not unit or not task:  # rejected before routing: nothing was counted
        return "–"
    n_in, n_out = _n(units_in), _n(units_out)
    if unit == "audio_seconds":
        return f"{n_in} s of audio → {n_out} words"
    if unit == "characters" and task == "tts":
        return f"{n_in} characters → {n_out} s of audio"
    if unit == "characters" and task == "rag":
        return f"{n_in} characters searched → {n_out} passages"
    if unit == "images":
        if not float(units_in or 0):
            return f"{n_out} picture{'s' if n_out != '1' else ''} drawn"
        pictures = f"{n_in} picture{'s' if n_in != '1' else ''}"
        return f"{pictures} → {n_out} tokens" if float(units_out or 0) else f"{pictures} read"
    if unit == "searches":
        return f"{n_in} search → {n_out} passages"
    return f"{n_in} → {n_out} {unit}"


def reply_messages(saved: tuple[str, dict]) -> list[dict]:
    """A reply's Chatbot messages (text, produced files, badge), live or reopened."""
    text, meta = saved
    content = safe_markdown(text)
    content += "".join(f"\n\n*{n}*" for n in meta.get("notes") or ())
    if meta.get("stopped"):
        content += STOPPED
    content += sources(meta.get("citations") or ())
    out = [{"role": "assistant", "content": content}]
    for path in meta.get("files") or ():
        if Path(path).is_file():
            out.append({"role": "assistant", "content": {"path": path}})
        else:
            gone = f"📎 {Path(path).name} (no longer on disk)"
            out.append({"role": "assistant", "content": gone})
    title, details = meta.get("badge") or (meta.get("model"), meta.get("reason", ""))
    if title:
        out.append(
            {
                "role": "assistant",
                "content": details,
                "metadata": {"title": title, "status": "done"},
            }
        )
    return out
