"""The chat sidebar: saved conversations (new, open, rename, delete, export) and prompt controls.

The conversations themselves live in assistant/chats/conversations.py; this file only
shows them. Each person sees their own chats (``user_of`` the request).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from assistant.chats.conversations import Turn
from assistant.chats.turns import export_file
from assistant.flow.service import Assistant
from assistant.web.ui.format import answers_in, fold_answers, number_answer
from assistant.web.ui.render import reply_messages, safe_markdown
from models.base import BadInput

NO_TEMPLATE = "none"


@dataclass
class PromptControls:
    system: gr.Textbox
    template: gr.Dropdown
    variables: gr.Textbox


def template_choices(assistant: Assistant) -> list[tuple[str, str]]:
    try:
        templates = assistant.templates()
    except BadInput as err:  # a broken user templates file must not stop the app
        gr.Warning(str(err))
        templates = {}
    return [("No template", NO_TEMPLATE)] + [(t.name, t.id) for t in templates.values()]


def build_prompt_controls(assistant: Assistant) -> PromptControls:
    with gr.Accordion("Prompt: system prompt and templates (saved with the chat)", open=False):
        system = gr.Textbox(
            label="System prompt for this chat",
            value="",
            lines=2,
            elem_id="system",
            placeholder="e.g. You are a concise assistant for a bakery.",
        )
        template = gr.Dropdown(
            template_choices(assistant),
            value=NO_TEMPLATE,
            label="Template (zero-, one- or few-shot)",
            elem_id="template",
        )
        variables = gr.Textbox(
            label="Template variables, name=value per line",
            value="",
            lines=2,
            elem_id="variables",
            placeholder="sentences=2",
        )
    return PromptControls(system, template, variables)


def chatbot_messages(turns: list[Turn]) -> list[dict]:
    """A saved chat as Chatbot messages: the same bubbles, files and badges as when it ran."""
    out: list[dict] = []
    earlier: list[dict] = []  # answers a re-run kept under the same question
    for n, turn in enumerate(turns):
        if turn.role != "user":
            reply = reply_messages((turn.content, turn.meta))
            if n + 1 < len(turns) and turns[n + 1].role != "user":
                earlier += reply  # re-run after it: folded and numbered, as it was live
            elif earlier:
                folded = fold_answers(earlier)
                out += folded + number_answer(reply, answers_in(folded) + 1)
                earlier = []
            else:
                out += reply
            continue
        # The paths the app itself recorded for this upload (after its checks),
        # so a reopened chat shows the picture or recording again.
        paths = turn.meta.get("paths") or []
        names = turn.meta.get("files") or []
        for n, name in enumerate(names):
            path = paths[n] if n < len(paths) else None
            if path and Path(path).is_file():
                out.append({"role": "user", "content": {"path": path}})
            else:  # older chats kept only the name, or the file has gone
                out.append({"role": "user", "content": f"📎 {name}"})
        if turn.content:
            # Saved text is rendered like a live message.
            out.append({"role": "user", "content": safe_markdown(turn.content)})
    return out


@dataclass(frozen=True)
class Sidebar:
    """The sidebar's components."""

    new: gr.Button
    listing: gr.Radio
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    fmt: gr.Radio
    export: gr.Button
    exported: gr.File
    answer: gr.Textbox  # the answer to "Delete this chat?"


def build_chat_sidebar(
    assistant: Assistant,
    user_of,
    chat_id: gr.State,
    chatbot: gr.Chatbot,
    prompt: PromptControls,
    demo: gr.Blocks,
) -> gr.Radio:
    bar = _sidebar()
    on = SidebarHandlers(assistant, user_of)
    demo.load(on.last_chat, None, [bar.listing, chat_id, chatbot, prompt.system, bar.title])
    bar.listing.input(on.open_chat, bar.listing, [chat_id, chatbot, prompt.system, bar.title])
    chat_id.change(on.current, chat_id, [bar.title, bar.exported])
    bar.new.click(on.new_chat, None, [chat_id, chatbot, prompt.system, bar.listing])
    bar.rename.click(on.do_rename, [chat_id, bar.title], bar.listing)
    # Asked first: a deleted chat cannot come back. The browser's answer travels in
    # a hidden box (the open chat is server-side State, which the browser cannot change).
    bar.delete.click(
        on.do_delete,
        [chat_id, bar.answer],
        [chat_id, chatbot, prompt.system, bar.listing],
        js="(id, a) => [id, confirm('Delete this chat for good?') ? 'yes' : 'no']",
    )
    bar.export.click(on.do_export, [chat_id, bar.fmt], bar.exported)
    return bar.listing


def _sidebar() -> Sidebar:
    with gr.Sidebar(label="Chats", open=True, elem_id="sidebar"):
        new = gr.Button("+ New chat", elem_id="new-chat")
        listing = gr.Radio([], label="Your chats", elem_id="chat-list")
        with gr.Accordion("Rename, delete, export", open=False):
            title = gr.Textbox(label="Name", elem_id="chat-title")
            rename = gr.Button("Rename", size="sm", elem_id="rename-chat")
            delete = gr.Button("Delete this chat", size="sm", variant="stop", elem_id="delete-chat")
            fmt = gr.Radio([("Markdown", "md"), ("JSON", "json")], value="md", label="Export as")
            export = gr.Button("Export", size="sm", elem_id="export-chat")
            exported = gr.File(label="Exported chat", interactive=False, elem_id="exported")
            answer = gr.Textbox("no", visible=False)
    return Sidebar(new, listing, title, rename, delete, fmt, export, exported, answer)


class SidebarHandlers:
    """The sidebar's events: each acts on the requesting person's own chats.

    Gradio names an event's endpoint after its function: do_rename, do_delete and
    do_export keep the names these endpoints have always had."""

    def __init__(self, assistant: Assistant, user_of):
        self.assistant, self.chats, self.user_of = assistant, assistant.chats, user_of

    def listed(self, request: gr.Request, selected: str | None = None):
        items = [(c.title, c.id) for c in self.chats.list(self.user_of(request))]
        return gr.Radio(choices=items, value=selected)

    def open_chat(self, selected: str | None, request: gr.Request):
        if not selected:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        user = self.user_of(request)
        try:
            info = self.chats.info(user, selected)
        except BadInput as err:
            gr.Warning(str(err))
            return None, [], "", self.listed(request)
        return (
            selected,
            chatbot_messages(self.chats.turns(user, selected)),
            info.system_prompt,
            gr.Textbox(value=info.title),
        )

    def new_chat(self):
        return None, [], "", gr.Radio(value=None)

    def do_rename(self, selected: str | None, name: str, request: gr.Request):
        if selected:
            try:
                self.chats.rename(self.user_of(request), selected, name)
            except BadInput as err:
                gr.Warning(str(err))
        return self.listed(request, selected)

    def do_delete(self, selected: str | None, answer: str, request: gr.Request):
        if not selected or answer != "yes":  # nothing open, or "Delete…?" was answered no
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        self.chats.delete(self.user_of(request), selected)
        return None, [], "", self.listed(request)

    def last_chat(self, request: gr.Request):
        """A reloaded page reopens the chat used last, as it was."""
        items = self.chats.list(self.user_of(request))
        if not items:
            return self.listed(request), None, [], "", ""
        chosen = items[0]
        messages = chatbot_messages(self.chats.turns(self.user_of(request), chosen.id))
        return (
            self.listed(request, chosen.id),
            chosen.id,
            messages,
            chosen.system_prompt,
            chosen.title,
        )

    def current(self, selected: str | None, request: gr.Request):
        """The Rename box and the export follow the open chat, whichever way it was opened."""
        if not selected:
            return "", None
        try:
            return self.chats.info(self.user_of(request), selected).title, None
        except BadInput:
            return "", None

    def do_export(self, selected: str | None, kind: str, request: gr.Request):
        if not selected:
            gr.Warning("Open or start a chat first.")
            return None
        folder = self.assistant.settings.home / "exports"
        return str(export_file(self.chats, folder, self.user_of(request), selected, kind))
