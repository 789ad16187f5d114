"""Gradio Blocks: the chat, a multimodal input, and the per-request panel.

The UI knows nothing of torch or of any model: it turns what the person
sent into a Request, streams what Assistant.handle yields, and shows the
session's ledger rows beside the chat. This module wires the page: the
components are laid out in layout.py, the chat's events handled in
handlers.py, their text made in format.py.
"""

from __future__ import annotations

import gradio as gr

from assistant.flow.service import Assistant
from assistant.web.ui.chats import build_chat_sidebar
from assistant.web.ui.compare import build_compare_tab
from assistant.web.ui.costs import build_costs_tab
from assistant.web.ui.documents import build_documents_tab, user_of
from assistant.web.ui.evaluate import build_evaluate_tab
from assistant.web.ui.format import resident_text
from assistant.web.ui.handlers import ChatHandlers, example_message, with_request
from assistant.web.ui.layout import build_chat_tab
from assistant.web.ui.tools import build_tools
from assistant.web.ui.tune import build_tune_tab


def build_app(assistant: Assistant) -> gr.Blocks:
    handlers = ChatHandlers(assistant)
    with gr.Blocks(title="Assistant") as demo:
        chat_id = gr.State(None)  # the open saved chat (assistant/chats/conversations.py)
        gr.Markdown("### Assistant — local models, routed and accounted")
        for warning in assistant.warnings:
            gr.Markdown(f"⚠️ {warning}", elem_classes="warning")
        with gr.Tab("Chat"):
            tab = build_chat_tab(assistant, handlers.pickable, handlers.speech_ok)
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
        listing = build_chat_sidebar(assistant, user_of, chat_id, tab.chatbot, tab.prompt, demo)
        _wire_chat(demo, handlers, tab, chat_id, listing)
        # A new tab shows what is loaded now, not what was when the app started.
        demo.load(lambda: resident_text(assistant), None, tab.resident)
        build_tools(assistant, demo)  # last: it hides every UI event from the tool list
    return demo


def _wire_chat(demo: gr.Blocks, handlers: ChatHandlers, tab, chat_id, listing) -> None:
    """Send, re-run, an example clicked, and Stop."""
    # In ChatUpdate.OUTPUTS order: the handlers name what they change.
    outputs = [tab.box, tab.chatbot, tab.panel, tab.resident, chat_id, listing]
    prompt_in = [tab.prompt.system, tab.prompt.template, tab.prompt.variables]
    inputs = [chat_id, tab.speak, *prompt_in, *tab.picture, tab.keep, *tab.pickers]
    respond = with_request(handlers.respond)
    sent = tab.box.submit(respond, [tab.box, tab.chatbot, *inputs], outputs, api_name="chat")
    again = tab.rerun.click(
        with_request(handlers.rerun), [tab.chatbot, *inputs], outputs, api_name="rerun"
    )
    # An example prompt under the welcome is a click: it goes into the box and is sent.
    # (The endpoint keeps the name it has always had on Gradio's API.)
    tried = tab.chatbot.example_select(
        example_message, None, tab.box, api_name="_example_message"
    ).then(respond, [tab.box, tab.chatbot, *inputs], outputs)
    tab.stop.click(None, None, None, cancels=[sent, again, tried])
    # A stopped reply leaves the box disabled: give it back.
    tab.stop.click(lambda: gr.MultimodalTextbox(interactive=True), None, tab.box)
    tab.stop.click(handlers.mark_stopped, tab.chatbot, [tab.chatbot, tab.panel, tab.resident])
