"""Gradio Blocks: the chat, a multimodal input, and the per-request panel.

The UI knows nothing of torch or of any model: it turns what the person
sent into a Request, streams what Assistant.handle yields, and shows the
session's ledger rows beside the chat.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import gradio as gr

from assistant.catalog.entries import TASKS
from assistant.chats.conversations import apply_template, parse_variables
from assistant.flow.service import Assistant, Outcome
from assistant.web.access import check_files
from assistant.web.space import gpu
from assistant.web.ui.chats import NO_TEMPLATE, build_chat_sidebar, build_prompt_controls
from assistant.web.ui.compare import build_compare_tab
from assistant.web.ui.costs import build_costs_tab
from assistant.web.ui.documents import build_documents_tab, user_of
from assistant.web.ui.evaluate import build_evaluate_tab
from assistant.web.ui.render import STOPPED, reply_messages, safe_markdown, units_text, usd
from assistant.web.ui.tools import build_tools
from assistant.web.ui.tune import build_tune_tab
from models.base import BadInput, Message, PictureOptions, Progress, Request

PANEL_COLUMNS = [
    "time",
    "model · task",
    "why (and what went wrong)",
    "queue / load / run s",
    "what was counted",
    "$ here / cloud",
    "status",
]


CSS = """
/* Stop shows exactly while a reply runs: the box is locked for that time. */
#stop { display: none; }
body:has(#input textarea[disabled]) #stop { display: flex; }
#panel .body-cell, #panel th { word-break: normal; overflow-wrap: normal; }
#panel .body-cell:first-child { white-space: nowrap; }
#chat .placeholder-content h3 { margin-top: 0; }
"""
# On a phone the sidebar covers the whole screen: start it closed there.
ON_LOAD = """() => {
  const tries = setInterval(() => {
    const bar = document.querySelector('.sidebar');
    if (!bar) return;
    clearInterval(tries);
    if (window.innerWidth <= 768 && bar.classList.contains('open'))
      bar.querySelector('.toggle-button').click();
  }, 100);
  setTimeout(() => clearInterval(tries), 20000);
}"""


def launch_options(settings=None) -> dict:
    # Uploads larger than this are refused by Gradio before they reach us.
    # Agents call the tools of assistant/web/ui/tools.py at /gradio_api/mcp/.
    options = {
        "max_file_size": "200mb",
        "show_error": False,
        "mcp_server": True,
        "css": CSS,
        "js": ON_LOAD,
    }
    if settings is not None and settings.auth:
        # Gradio's MCP server calls the app through a client that cannot log
        # in, so behind a login it would list tools and refuse every call.
        # Agents use /v1 with ASSISTANT_API_KEY there instead.
        options["mcp_server"] = False
        options["auth"] = list(settings.auth)  # Gradio's login page; user_of() reads the name
        options["auth_message"] = "Log in: each account has its own chats, documents and quota."
    if settings is not None:
        # Kept copies of indexed documents, so a cited recording plays from its timestamp.
        (settings.documents_dir / "files").mkdir(parents=True, exist_ok=True)
        # Pictures, speech and exports the app writes: Gradio copies an output into its
        # cache only from an allowed folder (or the checkout, or /tmp). The samples
        # are the welcome's example recording.
        options["allowed_paths"] = [
            str(settings.documents_dir / "files"),
            str(settings.home / "outputs"),
            str(settings.home / "exports"),
            str(SAMPLES),
        ]
        # Never served or copied, whatever else allows them (blocked wins in Gradio):
        # the app's own databases, and the system's secrets.
        options["blocked_paths"] = blocked_paths(settings)
    return options


def blocked_paths(settings) -> list[str]:
    home = settings.home.resolve()
    databases = [
        str(p)
        for pattern in ("*.sqlite*", "documents/*.sqlite*")
        for p in sorted(home.glob(pattern))
    ]
    for name in (
        "ledger.sqlite",
        "chats.sqlite",
        "upload_owners.sqlite",
        "documents/documents.sqlite",
    ):
        databases += [str(home / (name + tail)) for tail in ("", "-wal", "-shm", "-journal")]
    return sorted(set(databases)) + [
        str(home / "documents" / "chroma"),
        "/proc",
        "/etc",
        "/sys",
        "/root",
        "/dev",
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


def build_app(assistant: Assistant) -> gr.Blocks:
    speech_ok = _tts_available(assistant)
    # On ZeroGPU hardware a GPU is attached only inside this wrapper (a no-op elsewhere).
    handle = gpu(assistant.handle)

    pickable = _pickable_tasks(assistant)

    def respond(
        message: dict | None,
        chat: list[dict] | None,
        chat_id: str | None = None,
        speak: bool = False,
        system: str = "",
        template: str = NO_TEMPLATE,
        variables: str = "",
        steps: float | None = None,
        guidance: float | None = None,
        seed: float = -1,
        size: str = SIZE_DEFAULT,
        negative: str = "",
        strength: float = 0.6,
        *picks: str,
        request: gr.Request = None,
    ):
        session_id = (request.session_hash if request else None) or "anonymous"
        user = user_of(request)
        message = message or {}
        chat = list(chat or [])
        text = message.get("text") or ""
        files = [Path(f if isinstance(f, str) else f["path"]) for f in message.get("files") or []]
        try:
            # Whatever path a client sent: only this browser's own uploads (access.py).
            check_files(assistant.settings, request, files)
            chat_id, model_text, history, prompt = _prepare_turn(
                assistant, user, chat_id, text, system, template, variables
            )
        except BadInput as err:
            # Nothing is lost: the message goes back into the box to fix and resend.
            gr.Warning(str(err))
            yield (
                gr.MultimodalTextbox(value=message),
                chat,
                gr.skip(),
                gr.skip(),
                chat_id,
                gr.skip(),
            )
            return
        for path in files:
            chat.append({"role": "user", "content": {"path": str(path)}})
        if text.strip():
            chat.append({"role": "user", "content": text})
        # Words at once, not an empty bubble: a model's first use loads it first.
        chat.append({"role": "assistant", "content": waiting_text(assistant)})
        # Saved before the model runs: a crash or a Stop never loses what was typed.
        # The paths too, so a reopened chat shows the pictures and recordings again.
        assistant.chats.add(
            user,
            chat_id,
            "user",
            text,
            {"files": [p.name for p in files], "paths": [str(p) for p in files], **dict(prompt)},
        )
        yield (
            gr.MultimodalTextbox(value=None, interactive=False),
            chat,
            gr.skip(),
            gr.skip(),
            chat_id,
            _chat_list(assistant, user, chat_id),
        )

        prefer = tuple((t, m) for t, m in zip(pickable, picks, strict=False) if m and m != AUTO)
        req = Request(
            text=model_text,
            attachments=tuple(files),
            history=history,
            session_id=session_id,
            speak=bool(speak) and speech_ok,
            prefer=prefer,
            user=user,
            prompt=prompt,
            options=picture_options(steps, guidance, seed, size, negative, strength),
        )
        reply = ""
        outcome = None
        cancel = threading.Event()
        steps = handle(req, source="ui", cancel=cancel)
        try:
            for item in steps:
                if isinstance(item, Outcome):
                    outcome = item
                    break
                if isinstance(item, Progress):
                    chat[-1] = {"role": "assistant", "content": progress_bar(item)}
                    yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
                    continue
                reply += item
                chat[-1] = {"role": "assistant", "content": safe_markdown(reply)}
                yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        finally:
            if outcome is None:
                # The Stop button closed this generator: stop the model at its
                # next token, let the ledger finish the row, keep the partial reply.
                cancel.set()
                for item in steps:
                    outcome = item if isinstance(item, Outcome) else outcome
                _save_reply(assistant, user, chat_id, reply.strip(), outcome, stopped=True)
        assert outcome is not None
        cap = min(req.max_new_tokens, assistant.settings.max_new_tokens)
        _save_reply(assistant, user, chat_id, reply.strip(), outcome, cap=cap)
        chat[-1:] = reply_messages(saved_reply(reply.strip(), outcome, cap=cap))
        yield (
            gr.MultimodalTextbox(value=None, interactive=True),
            chat,
            panel_rows(assistant, session_id, user),
            resident_text(assistant),
            chat_id,
            _chat_list(assistant, user, chat_id),
        )

    def rerun(
        chat: list[dict] | None,
        chat_id: str | None = None,
        speak: bool = False,
        system: str = "",
        template: str = NO_TEMPLATE,
        variables: str = "",
        steps: float | None = None,
        guidance: float | None = None,
        seed: float = -1,
        size: str = SIZE_DEFAULT,
        negative: str = "",
        strength: float = 0.6,
        *picks: str,
        request: gr.Request = None,
    ):
        """Ask the last message again (with the models picked now), replacing its answer."""
        chat = list(chat or [])
        last = max((i for i, m in enumerate(chat) if m.get("role") == "user"), default=None)
        if last is None:
            yield gr.skip(), chat, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        first = last
        while first > 0 and chat[first - 1].get("role") == "user":
            first -= 1  # the files sent with the message are user turns too
        text, files = "", []
        for message in chat[first : last + 1]:
            content = message["content"]
            parts = content if isinstance(content, list) else [content]
            for part in parts:
                if isinstance(part, dict) and part.get("type") == "file":
                    files.append(part["file"]["path"])
                elif isinstance(part, dict) and "path" in part:
                    files.append(part["path"])
                else:
                    text += text_of(part)
        message = {"text": text, "files": files}
        # The earlier answers stay, folded under the question and numbered.
        earlier = fold_answers(chat[last + 1 :])
        turns = respond(
            message,
            chat[:first],
            chat_id,
            speak,
            system,
            template,
            variables,
            steps,
            guidance,
            seed,
            size,
            negative,
            strength,
            *picks,
            request=request,
        )
        for out in turns:
            shown = out[1]
            if isinstance(shown, list):
                if len(shown) <= last:  # refused before it started: the chat as it was
                    shown = chat
                else:
                    shown = (
                        shown[: last + 1]
                        + earlier
                        + number_answer(shown[last + 1 :], len(earlier) + 1)
                    )
                out = (out[0], shown, *out[2:])
            yield out

    with gr.Blocks(title="Assistant") as demo:
        chat_id = gr.State(None)  # the open saved chat (assistant/chats/conversations.py)
        gr.Markdown("### Assistant — local models, routed and accounted")
        for warning in assistant.warnings:
            gr.Markdown(f"⚠️ {warning}", elem_classes="warning")
        with gr.Tab("Chat"):
            chatbot = gr.Chatbot(
                label="Chat", height=520, elem_id="chat", placeholder=WELCOME, examples=examples()
            )
            box = gr.MultimodalTextbox(
                placeholder="Ask something, attach audio, images or documents, or record…",
                sources=["upload", "microphone"],
                file_count="multiple",
                show_label=False,
                elem_id="input",
            )
            with gr.Row():
                speak = gr.Checkbox(
                    label="Speak replies"
                    if speech_ok
                    else "Speak replies (install the optional Piper extra: make tts)",
                    value=False,
                    interactive=speech_ok,
                    elem_id="speak",
                    scale=3,
                )
                # Shown only while a reply runs (CSS): a red button at rest reads as an alarm.
                stop_btn = gr.Button("■ Stop", size="sm", variant="stop", elem_id="stop", scale=1)
                rerun_btn = gr.Button(
                    "Re-run last message with the models picked",
                    size="sm",
                    elem_id="rerun",
                    scale=2,
                )
            with gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=300):
                    prompt = build_prompt_controls(assistant)
                    with gr.Accordion(
                        "Models: pick one per task (auto lets the router choose)", open=False
                    ):
                        pickers = [
                            gr.Dropdown(
                                [(AUTO, AUTO)] + ids, value=AUTO, label=task, elem_id=f"pick-{task}"
                            )
                            for task, ids in pickable.items()
                        ]
                with gr.Column(scale=1, min_width=300):
                    with gr.Accordion("Pictures: steps, guidance, seed, size, edits", open=False):
                        picture = [
                            gr.Number(
                                0,
                                precision=0,
                                minimum=0,
                                maximum=100,
                                elem_id="steps",
                                label="Steps (0: the model's own, e.g. 1 for turbo)",
                            ),
                            gr.Number(
                                0,
                                minimum=0,
                                maximum=20,
                                elem_id="guidance",
                                label="Guidance (0: the model's own; 1 turns it off)",
                            ),
                            gr.Number(
                                -1,
                                precision=0,
                                elem_id="seed",
                                label="Seed (-1: new each time; a picture's seed redraws it)",
                            ),
                            gr.Dropdown(
                                [SIZE_DEFAULT, "256", "512", "768", "1024"],
                                value=SIZE_DEFAULT,
                                label="Size (square, pixels)",
                            ),
                            gr.Textbox("", label="Negative prompt (what to keep out)", lines=1),
                            gr.Slider(
                                0.1,
                                1.0,
                                value=0.6,
                                step=0.05,
                                label="Edit strength (attach a picture: how far to move from it)",
                            ),
                        ]
            # The whole width: seven columns in a third of the page wrapped a
            # letter at a time.
            gr.Markdown("**Requests this session** — model, why, and time spent")
            panel = gr.Dataframe(
                headers=PANEL_COLUMNS,
                value=[],
                interactive=False,
                wrap=True,
                column_widths=["9%", "18%", "24%", "13%", "15%", "13%", "8%"],
                elem_id="panel",
            )
            resident = gr.Markdown(resident_text(assistant), elem_id="resident")
        with gr.Tab("Documents") as documents_tab:
            build_documents_tab(assistant, documents_tab)
        with gr.Tab("Costs") as costs_tab:
            build_costs_tab(assistant, costs_tab)
        with gr.Tab("Compare") as compare_tab:
            build_compare_tab(assistant, compare_tab)
        with gr.Tab("Evaluate") as evaluate_tab:
            build_evaluate_tab(assistant, evaluate_tab)
        with gr.Tab("Fine-tune") as tune_tab:
            build_tune_tab(assistant, tune_tab)
        listing = build_chat_sidebar(assistant, user_of, chat_id, chatbot, prompt, demo)
        outputs = [box, chatbot, panel, resident, chat_id, listing]
        prompt_in = [prompt.system, prompt.template, prompt.variables]
        inputs = [chat_id, speak, *prompt_in, *picture, *pickers]
        sent = box.submit(with_request(respond), [box, chatbot, *inputs], outputs, api_name="chat")
        again = rerun_btn.click(with_request(rerun), [chatbot, *inputs], outputs, api_name="rerun")
        # An example prompt under the welcome is a click: it goes into the box and is sent.
        tried = chatbot.example_select(_example_message, None, box).then(
            with_request(respond), [box, chatbot, *inputs], outputs
        )
        running = [sent, again, tried]
        stop_btn.click(None, None, None, cancels=running)
        # A stopped reply leaves the box disabled: give it back.
        stop_btn.click(lambda: gr.MultimodalTextbox(interactive=True), None, box)

        def mark_stopped(chat: list[dict] | None, request: gr.Request = None):
            """The stopped reply says so, and its row joins the panel once the ledger has it."""
            session_id = (request.session_hash if request else None) or "anonymous"
            chat = with_stopped_note(list(chat or []))
            # The cancelled turn finishes its ledger row a moment after Stop.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(
                r["status"] == "started" for r in assistant.ledger.rows(session_id, limit=5)
            ):
                time.sleep(0.1)
            return (
                chat,
                panel_rows(assistant, session_id, user_of(request)),
                resident_text(assistant),
            )

        stop_btn.click(mark_stopped, chatbot, [chatbot, panel, resident])
        # A new tab shows what is loaded now, not what was when the app started.
        demo.load(lambda: resident_text(assistant), None, resident)
        build_tools(assistant, demo)  # last: it hides every UI event from the tool list
    return demo


AUTO = "auto"
# The welcome's example recording: one short sentence (the evaluation's own sample).
SAMPLES = Path(__file__).resolve().parents[2] / "evaluation" / "examples" / "speech"
WELCOME = """### Hello — what shall we try?

Everything runs on this machine: ask a question, attach a recording or a picture,
ask for a drawing, or add documents in the **Documents** tab and ask about them.
Each reply says which model answered, why, and what it cost. Try one:"""


def examples() -> list[dict]:
    """A few prompts per modality, shown under the welcome of an empty chat."""
    shown = [
        {"text": "What is the capital of France?", "display_text": "A quick question"},
        {"text": "Write a haiku about a lighthouse.", "display_text": "A short poem"},
        {"text": "draw a red circle on a blue background", "display_text": "Draw a picture"},
    ]
    recording = SAMPLES / "weather.flac"
    if recording.is_file():
        shown.append(
            {
                "text": "transcribe this",
                "files": [str(recording)],
                "display_text": "Transcribe a recording",
            }
        )
    return shown


def _example_message(selected: gr.SelectData) -> dict:
    value = selected.value if isinstance(selected.value, dict) else {"text": str(selected.value)}
    files = [f["path"] if isinstance(f, dict) else f for f in value.get("files") or []]
    return {"text": value.get("text") or "", "files": files}


def with_request(handler):
    """``handler`` as a Gradio event that is given the request.

    Gradio fills a ``gr.Request`` parameter only among the leading
    positional ones; the chat handlers take the model pickers as ``*picks``,
    after which their ``request`` was never filled: every chat ran as user
    "local" in session "anonymous". This puts the request first.
    """

    def event(request: gr.Request, *inputs):
        yield from handler(*inputs, request=request)

    # Not functools.wraps: Gradio would read the wrapped signature and fill nothing.
    event.__name__, event.handler = handler.__name__, handler
    return event


def _prepare_turn(
    assistant: Assistant,
    user: str,
    chat_id: str | None,
    text: str,
    system: str,
    template: str,
    variables: str,
):
    """(chat id, text for the model, history, prompt record): the saved chat, its
    system prompt and the chosen template applied. Raises BadInput on a bad template."""
    chats = assistant.chats
    if chat_id is None:
        chat_id = chats.create(user)
    chats.set_system_prompt(user, chat_id, system or "")
    history = chats.history(user, chat_id)
    prompt = {"chat": chat_id}
    if system and system.strip():
        prompt["system_prompt"] = system.strip()[:500]
    if template and template != NO_TEMPLATE:
        chosen = assistant.templates().get(template)
        if chosen is None:
            raise BadInput(f"The template '{template}' no longer exists; pick another.")
        text, history = apply_template(chosen, text, parse_variables(variables), history)
        prompt.update(template=chosen.id, shots=chosen.shots)
    return chat_id, text, history, tuple(prompt.items())


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


def fold_answers(answers: list[dict]) -> list[dict]:
    """The answers already under a question, each folded into one numbered message.

    A re-run keeps what came before, as peers do: each earlier answer
    collapses to "Answer 1 of 2 · model..." and opens with a click.
    """
    folded, text, badge_title = [], "", ""

    def close() -> None:
        nonlocal text, badge_title
        if text.strip() or badge_title:
            folded.append(
                {
                    "role": "assistant",
                    "content": text.strip() or "(no text)",
                    "metadata": {"title": badge_title, "status": "done"},
                }
            )
        text, badge_title = "", ""

    for message in answers:
        title = (message.get("metadata") or {}).get("title") or ""
        if title.startswith("Answer "):  # folded by an earlier re-run
            close()
            folded.append(message)
        elif title:  # the badge ends an answer
            badge_title = title
            close()
        else:
            text += text_of(message.get("content")) + "\n\n"
    close()
    total = len(folded) + 1
    out = []
    for n, message in enumerate(folded, 1):
        title = re.sub(r"^Answer \d+ of \d+ · ", "", message["metadata"]["title"])
        out.append(
            {
                **message,
                "metadata": {**message["metadata"], "title": f"Answer {n} of {total} · {title}"},
            }
        )
    return out


def number_answer(messages: list[dict], n: int) -> list[dict]:
    """The new answer's badge says which of the answers it is."""
    out = []
    for message in messages:
        title = (message.get("metadata") or {}).get("title")
        if title and n > 1 and not title.startswith("Answer "):
            message = {
                **message,
                "metadata": {**message["metadata"], "title": f"Answer {n} of {n} · {title}"},
            }
        out.append(message)
    return out


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
            chat[i] = {**message, "content": content + STOPPED}
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


def waiting_text(assistant: Assistant) -> str:
    if not assistant.pool.resident():
        return "*Loading a model for its first use (a few seconds), then the reply streams…*"
    return "*Working…*"


def _save_reply(
    assistant: Assistant,
    user: str,
    chat_id: str,
    text: str,
    outcome: Outcome | None,
    stopped: bool = False,
    cap: int = 0,
) -> None:
    saved, meta = saved_reply(text, outcome, stopped, cap)
    try:
        assistant.chats.add(user, chat_id, "assistant", saved, meta)
    except BadInput:
        pass  # the chat was deleted while the reply was running


def _chat_list(assistant: Assistant, user: str, selected: str | None) -> gr.Radio:
    items = [(c.title, c.id) for c in assistant.chats.list(user)]
    return gr.Radio(choices=items, value=selected)


def _pickable_tasks(assistant: Assistant) -> dict[str, list[tuple[str, str]]]:
    """Route task -> (label, model id) a person may pick (built ones; those that can load
    now first, the others labelled with why they cannot)."""
    weights = assistant.settings.weights_dir
    tasks: dict[str, list[tuple[str, str]]] = {}
    for task in TASKS:
        entries = [
            (e, *e.availability(weights)) for e in assistant.catalog.for_task(task) if e.built
        ]
        entries.sort(key=lambda item: not item[1])
        if entries:
            tasks[task] = [
                (e.id if ok else f"{e.id} — cannot load here ({why})", e.id)
                for e, ok, why in entries
            ]
    return tasks


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


def _tts_available(assistant: Assistant) -> bool:
    entry = assistant.catalog.default_for("tts")
    return entry is not None and entry.availability(assistant.settings.weights_dir)[0]
