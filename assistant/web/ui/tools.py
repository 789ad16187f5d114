"""Tools for agents: what Gradio's MCP server (at /gradio_api/mcp/) lists.

Gradio turns every public endpoint of the Blocks into an MCP tool, named
after its function and described by its docstring. The chat UI's own
events (send, re-run, the sidebar, the tabs) take UI state an agent cannot
supply, so they are made "undocumented": the browser and gradio_client
still call them, but neither the API page nor the MCP server lists them.
What agents see instead are four small tools, each one request through the
same router, pool and ledger as the chat (source "mcp"), so their cost
shows in the Costs tab like everything else. The same four are the app's
documented Gradio API, for programs using gradio_client (source
"gradio-api" in the ledger).

With ASSISTANT_AUTH set the MCP server is off (server.launch_options): Gradio's
MCP server reaches the app through a client that cannot log in, so every
call would be refused. Agents use the /v1 API with ASSISTANT_API_KEY there.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from assistant.flow.service import Assistant, Outcome
from assistant.web.access import check_files, has_api_key
from assistant.web.space import gpu
from assistant.web.ui.documents import user_of
from models.base import BadInput, PictureOptions, Request

TOOLS = ("ask", "draw_picture", "transcribe", "look_at_picture")


def build_tools(assistant: Assistant, demo: gr.Blocks) -> None:
    """Add the agent tools to ``demo`` and hide every other endpoint from the tool list."""
    tools = AgentTools(assistant)
    # Hidden components: Gradio describes each tool's inputs from them, and an
    # Image or Audio output is what makes the MCP server return a real image.
    with gr.Group(visible=False):
        question, model, prompt = gr.Textbox(), gr.Textbox("auto"), gr.Textbox()
        seed = gr.Number(-1, precision=0)
        # A File, not an Image, for the picture: gr.Image decodes it on arrival, so a
        # damaged file failed inside Gradio with no message ({"error": null}) and a
        # 9000x9000 PNG was decoded whole before the app's 40 MP refusal could read its
        # header. As a file it reaches the vision step's own checks untouched.
        audio, image = gr.Audio(type="filepath"), gr.File(file_types=["image"])
        answer, picture = gr.Textbox(), gr.Image(type="filepath", format="png")
        trigger = gr.Button()
    trigger.click(tools.ask, [question, model], answer, api_name="ask")
    trigger.click(tools.draw_picture, [prompt, seed], picture, api_name="draw_picture")
    trigger.click(tools.transcribe, [audio], answer, api_name="transcribe")
    trigger.click(tools.look_at_picture, [image, question], answer, api_name="look_at_picture")

    for fn in demo.fns.values():
        if fn.api_name not in TOOLS and fn.api_visibility == "public":
            fn.api_visibility = "undocumented"


class AgentTools:
    """The four tools. Their docstrings and parameters are what agents read (Gradio
    describes each tool from them), so they are written for an agent."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant
        self.ask_routed = gpu(assistant.ask)

    def _run(self, request: gr.Request | None, **fields) -> Outcome:
        settings = self.assistant.settings
        # Gradio's MCP server marks its calls; anything else is a program using
        # gradio_client. The ledger keeps the two apart.
        by_mcp = request is not None and request.headers.get("x-gradio-user") == "mcp"
        source = "mcp" if by_mcp else "gradio-api"
        session = (request.session_hash if request else None) or "none"
        # The tools are an API like /v1: with ASSISTANT_API_KEY set they need it, whichever
        # route reaches them (call/<tool>, queue/join, MCP, which forwards the agent's headers).
        headers = getattr(request, "headers", None) or {}
        if not has_api_key(settings, headers.get("authorization")):
            raise gr.Error(
                "This tool needs the API key: send 'Authorization: Bearer <key>' "
                "with the key in ASSISTANT_API_KEY."
            )
        try:  # whatever path a client sent: only its own uploads (access.py)
            check_files(settings, request, fields.get("attachments", ()))
        except BadInput as err:
            raise gr.Error(str(err)) from None
        req = Request(session_id=f"{source}-{session}", user=user_of(request), **fields)
        outcome = self.ask_routed(req, source)
        if outcome.status != "ok":
            raise gr.Error(outcome.error)  # the agent gets an error result with this message
        return outcome

    def ask(self, question: str, model: str = "auto", request: gr.Request = None) -> str:
        """Ask the local assistant a question in words; its router picks the model.

        Questions about documents the user has indexed are answered from them,
        with numbered sources. The reply ends with the model that answered and
        what the request cost.

        Args:
            question: the question or instruction, in plain words.
            model: "auto" to let the router choose, or a model id from /v1/models.
        """
        chosen = None if model.strip() in ("", "auto") else model.strip()
        return reply_text(self._run(request, text=question, model=chosen))

    def draw_picture(self, prompt: str, seed: float = -1, request: gr.Request = None) -> str:
        """Draw a picture from a description with the local image model.

        Offline the model is a small demo that draws coloured shapes on plain
        backgrounds (e.g. "a red circle on a blue background"); with a real
        diffusion model installed it draws anything.

        Args:
            prompt: what to draw.
            seed: a whole number to redraw the same picture, or -1 for a new one.
        """
        options = PictureOptions(seed=float(seed) if seed is not None and seed >= 0 else None)
        outcome = self._run(request, text=prompt, task="image_generation", options=options)
        # One output only: Gradio 6.31's MCP server flattens a tool's several
        # outputs into one text, losing the image. The model and cost are in
        # the ledger and the Costs tab.
        return str(outcome.result.files[0])

    def transcribe(self, audio: str, request: gr.Request = None) -> str:
        """Transcribe a recording (wav, mp3, ogg, flac, m4a) to text with Whisper.

        Args:
            audio: the recording to transcribe.
        """
        # "transcribe": the words that stop the chain after speech (service.py).
        return reply_text(
            self._run(request, text="transcribe", task="asr", attachments=_paths(audio))
        )

    def look_at_picture(
        self, image: str, question: str = "What is in this picture?", request: gr.Request = None
    ) -> str:
        """Answer a question about a picture: what it shows, or the text written in it.

        Args:
            image: the picture to look at.
            question: what to find out about it.
        """
        return reply_text(
            self._run(request, text=question, task="vision", attachments=_paths(image))
        )


def reply_text(outcome: Outcome) -> str:
    """The answer, its sources and notes, then who answered and at what cost."""
    result = outcome.result
    parts = [result.text.strip()] + [f"({note})" for note in result.notes]
    for n, c in enumerate(result.citations, 1):
        parts.append(f"[{n}] {c['source']} — {c['location']}")
    route = outcome.route
    # A chain (documents, then the answer) names every model in order, as the UI's badge does.
    models = " → ".join(s.route.model for s in outcome.steps if s.route) or route.model
    line = f"— {models} ({route.task}; {route.reason}), {outcome.run_s:.1f} s"
    if outcome.cost and outcome.cost.usd_local is not None:
        line += f", ${outcome.cost.usd_local:.2g} here"
        if outcome.cost.usd_cloud is not None:
            line += f" vs ${outcome.cost.usd_cloud:.2g} on a cloud API"
    return "\n".join(p for p in parts + [line] if p)


def _paths(value: str | None) -> tuple[Path, ...]:
    return (Path(value),) if value else ()
