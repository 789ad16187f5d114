"""The chat tab's layout: the chat, the message box, its buttons, the prompt and model
pickers, the picture panel and the session panel; and the page's look (CSS, the phone
script) that the server mounts with (assistant/web/server.py launch_options).

Components only: the events are wired in app.py, handled in handlers.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from assistant.flow.service import Assistant
from assistant.web.ui.chats import PromptControls, build_prompt_controls
from assistant.web.ui.format import PANEL_COLUMNS, SIZE_DEFAULT, resident_text

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


AUTO = "auto"
ONCE, KEEP = "this message only", "add to my documents"


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


@dataclass(frozen=True)
class ChatTab:
    """The chat tab's components the events read or write."""

    chatbot: gr.Chatbot
    box: gr.MultimodalTextbox
    speak: gr.Checkbox
    keep: gr.Radio  # an attached document: for this message only, or kept (KEEP)
    stop: gr.Button
    rerun: gr.Button
    prompt: PromptControls
    pickers: list  # one Dropdown per pickable task, in pickable_tasks' order
    picture: list  # steps, guidance, seed, size, negative, strength
    panel: gr.Dataframe
    resident: gr.Markdown


def build_chat_tab(assistant: Assistant, pickable: dict, speech_ok: bool) -> ChatTab:
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
        # Asked, not assumed: a file attached to one message used to join the
        # knowledge base for good, cited by every later question.
        keep = gr.Radio(
            [ONCE, KEEP],
            value=ONCE,
            label="Attached documents",
            elem_id="keep-docs",
            scale=4,
            min_width=330,  # its two choices on one line; on a phone, a line of its own
        )
        speak = gr.Checkbox(
            label="Speak replies"
            if speech_ok
            else "Speak replies (needs the Piper extra: make tts)",
            value=False,
            interactive=speech_ok,
            elem_id="speak",
            scale=2,
            min_width=200,
        )
        # Shown only while a reply runs (CSS): a red button at rest reads as an alarm.
        stop = gr.Button("■ Stop", size="sm", variant="stop", elem_id="stop", scale=1)
        rerun = gr.Button(
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
                picture = _picture_controls()
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
    return ChatTab(
        chatbot, box, speak, keep, stop, rerun, prompt, pickers, picture, panel, resident
    )


def _picture_controls() -> list:
    return [
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
