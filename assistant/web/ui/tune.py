"""The Fine-tune tab: teach a model from your examples, watch the loss, use the result.

Training runs in a worker thread (assistant/tuning.py); this generator
shows step, loss and time left, draws the loss curve, and offers Stop,
which ends the run after the current step and keeps the last finished
epoch for a resume. The finished model's card shows base and tuned side
by side on the held-back examples, and the model is in every picker at
once (no restart).
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import gradio as gr
import pandas as pd

from assistant.flow.service import Assistant
from assistant.tuning import tunable, tune
from assistant.web.access import check_files
from models.base import AssistantError, BadInput

EXAMPLE = Path(__file__).resolve().parents[3] / "training" / "examples" / "tickets.jsonl"
SHIPPED = "tickets — 48 messages → a fixed JSON ticket (the shipped example)"
UPLOADED = "my own file (upload it)"


def card_markdown(card: dict) -> str:
    t, c = card["training"], card["cost"]
    rows = "\n".join(
        f"| {m['model']} | {m['score']:.2f} | {m['n']} | {m['latency_p50_s']:.2f} |"
        for m in card["eval"]["models"]
    )
    cloud = f"${c['usd_cloud']:.4f}" if c.get("usd_cloud") is not None else "–"
    return (
        f"### {card['id']} is ready\n\n"
        f"From **{card['base']}** by {card['method']} on {card['data']['train']} examples "
        f"({card['data']['validation']} held back), {t['steps']} steps in {t['seconds']:.0f} s "
        f"({t['seconds_per_step']:.1f} s/step, {t['tokens_per_s']:.0f} tokens/s). Validation "
        f"loss {t['val_loss_before']:.3f} → **{t['val_loss_after']:.3f}**.\n\n"
        f"| model | {card['eval']['metric']} on held-back examples | n | p50 s |\n"
        f"|---|---|---|---|\n{rows}\n\n"
        f"Cost: ${c['usd_local']:.5f} here ({c['device_seconds']:.0f} device-seconds) vs "
        f"{cloud} for a hosted fine-tuning job ({c['cloud_ref']}). It is served now as "
        f"`{card['id']}`: pick it in the Models panel, Compare or Evaluate."
    )


def build_tune_tab(assistant: Assistant, tab: gr.Tab) -> None:
    gr.Markdown(
        "Teach a model a format, a tone or a task from **a few dozen examples**: JSONL "
        'of `{"messages": [...]}` (as OpenAI and TRL take them) or CSV with '
        "`prompt,completion`. 10% is held back to show whether it helped."
    )
    inputs, base = _controls(assistant)
    with gr.Row():
        go = gr.Button("Train", variant="primary", elem_id="tune-go")
        stop_btn = gr.Button("■ Stop training", variant="stop", visible=False, elem_id="tune-stop")
    status = gr.Markdown(elem_id="tune-status")
    curve = gr.LinePlot(
        x="step", y="loss", title="Training loss", height=260, visible=False, elem_id="tune-curve"
    )
    card = gr.Markdown(elem_id="tune-card")
    # Browser session -> the running training's stop flag (a State would be copied).
    halts: dict[str, threading.Event] = {}
    tab.select(lambda: gr.Dropdown(choices=tunable(assistant)), None, base, api_name=False)
    go.click(
        _trainer(assistant, halts), inputs, [status, curve, card, go, stop_btn], api_name=False
    )

    def halt_training(request: gr.Request):
        halt = halts.get(request.session_hash)
        if halt is not None:
            halt.set()
        return "Stopping after the current step; the last finished epoch is kept for a resume."

    stop_btn.click(halt_training, None, status, api_name=False)


def _controls(assistant: Assistant) -> tuple[list, gr.Dropdown]:
    """([examples, upload, base, name, method, epochs], the base picker)."""
    with gr.Row():
        data = gr.Dropdown(
            [SHIPPED, UPLOADED], value=SHIPPED, label="Examples", scale=2, elem_id="tune-data"
        )
        upload = gr.File(
            label="Your examples (.jsonl or .csv)",
            file_types=[".jsonl", ".csv"],
            scale=1,
            height=110,
            elem_id="tune-upload",
        )
    with gr.Row():
        bases = tunable(assistant)
        base = gr.Dropdown(
            bases, value=bases[0] if bases else None, label="Base model", elem_id="tune-base"
        )
        name = gr.Textbox("my-tickets", label="New model's name", elem_id="tune-name")
        method = gr.Radio(["lora", "full"], value="lora", label="Method")
        epochs = gr.Number(3, precision=0, minimum=1, maximum=20, label="Epochs")
    return [data, upload, base, name, method, epochs], base


def _trainer(assistant: Assistant, halts: dict[str, threading.Event]):
    """The Train button's generator: (status, curve, card, Train, Stop) as training goes."""

    def train(which, file, base_id, new_name, how, n_epochs, request: gr.Request):
        try:
            path = EXAMPLE if which == SHIPPED else _upload(file)
            if which != SHIPPED:  # whatever path a client sent: this browser's uploads only
                check_files(assistant.settings, request, [path])
        except AssistantError as err:
            gr.Warning(str(err))
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        halt = halts[request.session_hash] = threading.Event()
        job = (path, base_id, (new_name or "").strip(), how, int(n_epochs or 3))
        events = _start(assistant, job, halt)
        losses: list[dict] = []
        starting = "Preparing the base model and checking the examples…"
        yield starting, None, "", gr.Button(visible=False), gr.Button(visible=True)
        while True:
            event = events.get()
            if isinstance(event, BaseException):
                failed = f"⚠️ {event or type(event).__name__}"
                yield failed, gr.skip(), "", gr.Button(visible=True), gr.Button(visible=False)
                return
            if isinstance(event, dict):
                card = card_markdown(event)
                yield "Done.", gr.skip(), card, gr.Button(visible=True), gr.Button(visible=False)
                return
            if isinstance(event, str):  # a stage before or after the training steps
                yield event, gr.skip(), "", gr.skip(), gr.skip()
                continue
            losses.append({"step": event.step, "loss": event.loss})
            curve = gr.LinePlot(pd.DataFrame(losses), visible=True)
            yield progress_line(event), curve, gr.skip(), gr.skip(), gr.skip()

    return train


def _start(assistant: Assistant, job: tuple, halt: threading.Event) -> queue.Queue:
    """Train in a worker thread; the queue gets steps, then the card (a dict) or an error."""
    events: queue.Queue = queue.Queue()
    path, base_id, new_name, how, n_epochs = job

    def work():
        try:
            card = tune(
                assistant, path, base_id, new_name, how, n_epochs, events.put, halt, source="ui"
            )
            events.put(card)
        except BaseException as err:  # noqa: BLE001 - shown to the person
            events.put(err)

    threading.Thread(target=work, daemon=True, name="tune").start()
    return events


def progress_line(event) -> str:
    bar = "▓" * round(20 * event.step / event.total)
    line = (
        f"`{bar:░<20}` step {event.step}/{event.total} · epoch {event.epoch} · "
        f"loss {event.loss:.3f} · {event.elapsed_s:.0f} s, about {event.eta_s:.0f} s left"
    )
    if event.step == event.total:
        line += " · evaluating base and tuned on the held-back examples…"
    return line


def _upload(file) -> Path:
    if not file:
        raise BadInput("Upload your examples (.jsonl or .csv) first.")
    return Path(file if isinstance(file, str) else file.name)
