"""The Documents tab: upload with progress, what is indexed, delete.

Uploads go to the person's own collection, or to the shared one when they
tick the box; the list shows both, so nothing indexed is invisible.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import unquote

import gradio as gr

from assistant.flow.service import Assistant
from assistant.knowledge.rag import collections_for
from assistant.web.access import USER_HEADER, check_files
from models.base import BadInput

COLUMNS = ["name", "collection", "status", "chunks", "size", "added", "id"]


def user_of(request: gr.Request | None) -> str:
    """Who the request acts as: the login; in public mode a guest per browser; else "local".

    The file gate (assistant/web/owners.py) works it out and hands it over in a
    header of its own, dropping any a client sent; without the gate (tests,
    demo.launch()) the login name, or "local".
    """
    if request is None:
        return "local"
    headers = getattr(request, "headers", None)
    given = headers.get(USER_HEADER) if headers is not None else None
    if given:
        return unquote(given)
    return getattr(request, "username", None) or "local"


def document_rows(assistant: Assistant, user: str) -> list[list]:
    rows = []
    for d in assistant.store.documents(collections_for(user)):
        status = d.status if d.status == "complete" else "interrupted: upload it again to finish"
        added = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.added))
        size = f"{d.bytes:,} B" if d.bytes < 1024 else f"{d.bytes / 1024:,.0f} KB"
        rows.append([d.name, d.collection, status, d.chunks, size, added, d.doc_id[:12]])
    return rows


EMPTY = (
    "Nothing indexed yet. Add files above and press **Index**, or attach one in the chat "
    "with **add to my documents** chosen."
)


def build_documents_tab(assistant: Assistant, tab: gr.Tab) -> None:
    files, shared, add, status, table, doc_id, delete = _layout()
    on = DocumentHandlers(assistant)
    add.click(on.index, [files, shared], [status, table, files], api_name="index_documents")
    delete.click(
        on.remove,
        [doc_id],
        [status, table],
        api_name="delete_document",
        js="(id) => [(id && confirm('Delete this document from the knowledge base?')) ? id : '']",
    )
    table.select(on.pick, None, doc_id)
    tab.select(on.opened, None, [table, status])


def _layout() -> tuple:
    """(files, shared, add, status, table, doc_id, delete): the tab's components."""
    gr.Markdown(
        "Upload documents (txt, md, html, pdf, docx), recordings or pictures; ask about them in "
        "the chat. Answers cite the passages they use. Recordings are transcribed and cited by "
        "time; pictures are indexed by what they show and the text in them."
    )
    with gr.Row():
        files = gr.File(
            label="Add to the knowledge base", file_count="multiple", elem_id="doc-upload"
        )
        with gr.Column():
            shared = gr.Checkbox(label="Share with every user", value=False)
            add = gr.Button("Index", variant="primary", elem_id="doc-index")
            status = gr.Markdown(elem_id="doc-status")
    table = gr.Dataframe(headers=COLUMNS, value=[], interactive=False, elem_id="doc-table")
    with gr.Row():
        doc_id = gr.Textbox(
            label="Document to delete (click its row, or paste its id)",
            max_lines=1,
            scale=3,
            elem_id="doc-id",
        )
        delete = gr.Button("Delete", variant="stop", scale=1, elem_id="doc-delete")
    return files, shared, add, status, table, doc_id, delete


class DocumentHandlers:
    """The tab's events (Gradio names their endpoints after these methods)."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant

    def index(self, paths, share: bool, request: gr.Request = None, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        assistant = self.assistant
        user = user_of(request)
        said = []
        chosen = [Path(raw if isinstance(raw, str) else raw.name) for raw in paths or []]
        try:  # whatever path a client sent: only this browser's own uploads (access.py)
            check_files(assistant.settings, request, chosen)
        except BadInput as err:
            return f"⚠️ {err}", document_rows(assistant, user), None
        for n, path in enumerate(chosen):
            share_of_total = 1 / len(paths)

            def step(fraction: float, message: str, n=n, share_of_total=share_of_total) -> None:
                progress((n + fraction) * share_of_total, desc=message)

            outcome = assistant.ingest(path, user=user, shared=share, source="ui", progress=step)
            said.append(outcome.result.text if outcome.status == "ok" else f"⚠️ {outcome.error}")
        if not said:
            said = ["Choose one or more files first."]
        return "\n\n".join(said), document_rows(assistant, user), None

    def remove(self, prefix: str, request: gr.Request = None):
        assistant = self.assistant
        user = user_of(request)
        prefix = (prefix or "").strip()
        if not prefix:  # nothing chosen, or the person said no to "Delete…?"
            return "Nothing deleted.", document_rows(assistant, user)
        docs = [
            d
            for d in assistant.store.documents(collections_for(user))
            if prefix and d.doc_id.startswith(prefix)
        ]
        if len(docs) != 1:
            return (
                f"⚠️ '{prefix}' matches {len(docs)} documents: copy the id from the table.",
                document_rows(assistant, user),
            )
        gone = assistant.store.delete(docs[0].collection, docs[0].doc_id)
        return f"Deleted {gone.name} ({gone.chunks} chunks).", document_rows(assistant, user)

    def pick(self, selected: gr.SelectData):
        # A click on a row fills the box: deleting starts from the row, not a copied id.
        row = selected.row_value or []
        return row[-1] if row else gr.skip()

    def refresh(self, request: gr.Request = None):
        return document_rows(self.assistant, user_of(request))

    def opened(self, request: gr.Request = None):
        """The table, and what to do first when it is empty (a bare header said nothing)."""
        rows = self.refresh(request)
        return rows, (gr.skip() if rows else EMPTY)
