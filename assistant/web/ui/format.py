"""What the chat shows, as text: a message's plain text, the route badge under a reply,
the session panel's rows, a picture's progress bar, and a reply as the chat store keeps it.

Pure functions of their inputs (no Gradio): the handlers and the tests call them.
"""

from __future__ import annotations

import re
import time

from assistant.flow.outcome import Outcome
from assistant.flow.service import Assistant
from assistant.web.ui.render import STOPPED, units_text, usd
from models.base import Message, PictureOptions, Progress

# The bubble before anything comes; a model that must load first then says so by name.
WAITING = "*Working…*"

PANEL_COLUMNS = [
    "time",
    "model · task",
    "why (and what went wrong)",
    "queue / load / run s",
    "what was counted",
    "$ here / cloud",
    "status",
]


def text_of(content) -> str:
    """Plain text of a Chatbot message's content (str, a part dict, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text", "") if content.get("type", "text") == "text" else ""
    if isinstance(content, (list, tuple)):
        return "".join(text_of(part) for part in content)
    return ""


def history_of(chat: list[dict]) -> tuple[Message, ...]:
    """Earlier turns for the model: text only, without the route badges."""
    turns = []
    for message in chat:
        if (message.get("metadata") or {}).get("title"):
            continue
        text = text_of(message.get("content")).strip()
        if text and message.get("role") in ("user", "assistant"):
            turns.append(Message(message["role"], text))
    return tuple(turns)


SIZE_DEFAULT = "model default"


def picture_options(steps, guidance, seed, size, negative, strength) -> PictureOptions:
    """The picture controls as Request.options; 0 or blank leaves the model's own value.

    0, not blank, is what the panel sends for "the model's own": Gradio's
    Number shows and sends 0 for an empty value as soon as it is drawn, so a
    blank default turned into 1 step and no guidance for anyone who opened
    the panel. 0 steps means nothing else; guidance 1 is how to turn it off.
    """
    chosen = {
        "steps": steps or None,
        "guidance": guidance or None,
        "seed": seed,
        "strength": strength,
        "negative": (negative or "").strip() or None,
    }
    if size and size != SIZE_DEFAULT:
        chosen.update(width=float(size), height=float(size))
    return PictureOptions(**{k: v for k, v in chosen.items() if v is not None and v != ""})


def progress_bar(step: Progress, width: int = 20) -> str:
    """'Drawing ▓▓▓▓░░░░ step 5/25' for a picture's denoising steps."""
    filled = round(width * step.done / max(1, step.total))
    return f"Drawing `{'▓' * filled}{'░' * (width - filled)}` {step.what} {step.done}/{step.total}"


def badge(outcome: Outcome) -> tuple[str, str]:
    """(one-line title, details) of the route badge under a reply."""
    route = outcome.route
    if route is None:
        return "rejected before routing", outcome.error or ""
    usage = outcome.result.usage if outcome.result else None
    units = (
        f" · {units_text(usage.unit, route.task, usage.units_in, usage.units_out)}" if usage else ""
    )
    load = f" · cold load {outcome.load_s:.1f}s" if outcome.load_s > 0.05 else ""
    if outcome.evicted:  # this request made room, and paid for it
        load += f" (unloaded {', '.join(outcome.evicted)})"
    money = ""
    if outcome.cost:
        cloud = outcome.cost.usd_cloud
        money = f" · {usd(outcome.cost.usd_local)} here" + (
            f" vs {usd(cloud)} cloud" if cloud is not None else " (no cloud API does this)"
        )
    # A chain (speech, then the answer; or the answer, then its voice) names
    # every model in order; units are the last step's, time is the total.
    routes = [s.route for s in outcome.steps if s.route] or [route]
    models = " → ".join(r.model for r in routes)
    tasks = " → ".join(r.task for r in routes)
    title = f"{models} · {tasks} · {outcome.run_s:.1f}s{load}{units}{money}"
    others = ", ".join(_alternative(a) for a in route.alternatives) or "none"
    details = (
        f"Why: {route.reason} (confidence {route.confidence:.2f}). "
        f"Alternatives: {others}. Queue {outcome.queue_s:.2f}s, load {outcome.load_s:.2f}s, "
        f"run {outcome.run_s:.2f}s on {outcome.device}."
    )
    if outcome.cost:
        c = outcome.cost
        details += (
            f" Energy {c.energy_j:.0f} J ({c.energy_method}). "
            f"Cloud price: {c.cloud_ref or 'no comparable API'}."
        )
    return title, details


def _alternative(alt: dict) -> str:
    runs = alt.get("est_from_requests") or 0
    if not runs:
        return f"{alt['model']} (no cost history yet)"
    return f"{alt['model']} (≈{usd(alt['est_usd_local'])} here, median of {runs})"


def panel_rows(assistant: Assistant, session_id: str, user: str | None = None) -> list[list]:
    rows = []
    # The user too: a session id is whatever the client sent, never proof of who it is.
    for r in assistant.ledger.rows(session_id=session_id, limit=200, user=user):
        why = r["reason"] or ""
        if r["error"]:  # the why column is the wide one: the reason fits there
            why = f"{why}\n⚠️ {r['error'][:200]}".strip()
        rows.append(
            [
                time.strftime("%H:%M:%S", time.localtime(r["started_at"])),
                f"{r['model'] or '-'} · {r['task'] or '-'}",
                why,
                f"{r['queue_s'] or 0:.2f} / {r['load_s'] or 0:.2f} / {r['run_s'] or 0:.2f}",
                units_text(r["unit"], r["task"], r["units_in"], r["units_out"]),
                f"{usd(r['usd_local'])} / {usd(r['usd_cloud'])}",
                r["status"],
            ]
        )
    return rows


def saved_reply(
    text: str, outcome: Outcome | None, stopped: bool = False, cap: int = 0
) -> tuple[str, dict]:
    """(text, meta) of a reply as the chat store keeps it: everything its
    bubble shows (notes, sources, files, the full badge), so reopening the
    chat shows the same reply, not a bare model name."""
    meta: dict = {"stopped": True} if stopped else {}
    if outcome is not None:
        meta.update(status=outcome.status, request_id=outcome.request_id)
        if outcome.route:
            meta.update(model=outcome.route.model, reason=outcome.route.reason)
        if outcome.status != "ok":
            # Keep what already arrived (e.g. a transcript before a failed step).
            text = f"{text}\n\n⚠️ {outcome.error}".strip()
        elif not text and outcome.result:
            text = outcome.result.text
        result = outcome.result
        if result is not None:
            notes = list(result.notes)
            usage = result.usage
            if (
                outcome.status == "ok"
                and not stopped
                and cap
                and usage
                and usage.unit == "tokens"
                and usage.units_out >= cap
            ):
                notes.append(
                    f"Cut at the {cap}-token cap on a reply (ASSISTANT_MAX_NEW_TOKENS sets it)."
                )
            meta.update(
                notes=notes,
                files=[str(f) for f in result.files],
                citations=[{k: v for k, v in c.items() if k != "text"} for c in result.citations],
            )
        meta["badge"] = list(badge(outcome))
    return text, meta


_HEADER = re.compile(r"\*\*Answer \d+ of \d+\*\*")


def has_file(content) -> bool:
    """Whether a Chatbot message shows a file: saved ({"path"}) or live (a "file" part)."""
    if isinstance(content, dict):
        return bool(content.get("path")) or content.get("type") == "file"
    if isinstance(content, (list, tuple)):
        return any(has_file(part) for part in content)
    return False


def answers_in(folded: list[dict]) -> int:
    """How many answers ``fold_answers`` folded (its files are messages of their own)."""
    return sum(((m.get("metadata") or {}).get("title") or "").startswith("Answer ") for m in folded)


def fold_answers(answers: list[dict]) -> list[dict]:
    """The answers already under a question, each folded into one numbered message.

    A re-run keeps what came before, as peers do: each earlier answer
    collapses to "Answer 1 of 2 · model..." and opens with a click. A fold
    holds only text, so an answer's pictures and recordings stay shown just
    below its fold.
    """
    groups: list[tuple[dict, list[dict]]] = []  # (the folded answer, its files)
    text, badge_title, files = "", "", []
    after_fold = False  # files met now belong to an answer folded by an earlier re-run

    def close() -> None:
        nonlocal text, badge_title, files
        if text.strip() or badge_title or files:
            content = text.strip() or ("(a file, below)" if files else "(no text)")
            message = {"role": "assistant", "content": content}
            groups.append((message | {"metadata": {"title": badge_title, "status": "done"}}, files))
        text, badge_title, files = "", "", []

    for message in answers:
        title = (message.get("metadata") or {}).get("title") or ""
        content = message.get("content")
        if _HEADER.fullmatch(text_of(content)):
            continue  # number_answer's heading: the fold says it
        if title.startswith("Answer "):  # folded by an earlier re-run
            close()
            groups.append((message, []))
            after_fold = True
        elif has_file(content):
            (groups[-1][1] if after_fold else files).append(message)
        elif title:  # the badge ends an answer
            badge_title, after_fold = title, False
            close()
        else:
            text += text_of(content) + "\n\n"
            after_fold = False
    close()
    total = len(groups) + 1
    out = []
    for n, (message, attached) in enumerate(groups, 1):
        title = re.sub(r"^Answer \d+ of \d+ · ", "", message["metadata"]["title"])
        meta = {**message["metadata"], "title": f"Answer {n} of {total} · {title}"}
        out += [{**message, "metadata": meta}, *attached]
    return out


def number_answer(messages: list[dict], n: int) -> list[dict]:
    """The new answer headed by which of the answers it is: the earlier ones are folded
    above it, and a title between them would read as the earlier one's."""
    if n < 2 or not messages:
        return messages
    return [{"role": "assistant", "content": f"**Answer {n} of {n}**"}, *messages]


# What the bubble shows while nothing has come: WAITING, or a model's "*Loading …*" line.
_WAITING_LINE = re.compile(r"(\n\n)?\*(Working|Loading [^\n]*)…\*$")


def with_stopped_note(chat: list[dict]) -> list[dict]:
    """The chat with the stopped note under the last reply's text (not its badge or files)."""
    for i in range(len(chat) - 1, -1, -1):
        message = chat[i]
        if message.get("role") == "user":
            break
        content = message.get("content")
        if (message.get("metadata") or {}).get("title"):
            continue
        if isinstance(content, str):
            # A waiting line is not the reply: Stop before any word says that instead.
            content = _WAITING_LINE.sub("", content)
            note = content + STOPPED if content.strip() else "*(stopped before the reply began)*"
            chat[i] = {**message, "content": note}
            return chat
        if (
            isinstance(content, list)
            and content
            and isinstance(content[-1], dict)
            and content[-1].get("type") == "text"
        ):
            last = {**content[-1], "text": content[-1]["text"] + STOPPED}
            chat[i] = {**message, "content": [*content[:-1], last]}
            return chat
    return chat


def resident_text(assistant: Assistant) -> str:
    loaded = assistant.pool.resident()
    if not loaded:
        return "Loaded models: none yet (the first request to each model pays its load)."
    total = sum(m["memory_mb"] for m in loaded)
    names = ", ".join(f"{m['model']} ({m['memory_mb']} MB, {m['device']})" for m in loaded)
    return (
        f"Loaded models: {names} — {total:,} of {assistant.pool.budget_mb:,.0f} MB "
        "budget (ASSISTANT_MEMORY_GB)."
    )
