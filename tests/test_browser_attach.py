"""A document attached to a chat message (issue #18, item 8), in a real browser: read
for that message only unless the person picks "add to my documents", listed then,
and deleted from its row in the Documents tab after a confirmation.

Its own app on a fresh ASSISTANT_HOME (the fixtures of test_browser_newcomer.py);
the tests run in file order. Screenshots go to test-artifacts/newcomer-*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_browser_newcomer import _ask, _new_chat, browser, page, server, shot

pytestmark = pytest.mark.real
__all__ = ["browser", "page", "server"]  # the fixtures, shared by import


# -- 8. an attached document: this message only, or kept --------------------------------

ROTA = """# Lighthouse rota

On Tuesdays Marta keeps the lamp, and on Fridays Tomas keeps it.
"""
HARBOUR = """# Harbour notes

The harbour master rings the fog bell every ten minutes in fog.
"""


def _attach_and_ask(page, path: Path, keep: bool, question: str) -> str:
    page.locator("#keep-docs label", has_text="add to my documents" if keep else "only").click()
    page.locator("#input input[type=file]").set_input_files(str(path))
    page.locator(
        "#input .thumbnail-item, #input .file-preview, #input .thumbnails"
    ).first.wait_for()
    return _ask(page, question)


def _listed_documents(page, expected: str | None = None) -> str:
    page.get_by_role("tab", name="Documents").click()
    try:
        # Gradio draws the rows as a virtual list (beside a hidden copy it measures).
        rows = page.locator("#doc-table .virtual-row")
        if expected:
            rows.filter(has_text=expected).first.wait_for(timeout=30_000)
        else:
            page.locator("#doc-table").wait_for()
            page.wait_for_timeout(2000)  # the tab's refresh
        return " | ".join(rows.all_inner_texts())
    finally:
        page.get_by_role("tab", name="Chat").click()


def test_a_document_attached_for_this_message_only_is_not_kept(page, tmp_path):
    rota = tmp_path / "lighthouse-rota.md"
    rota.write_text(ROTA)
    _new_chat(page)
    # The choice is on the page, beside the box, and "this message only" is the default.
    choice = page.locator("#keep-docs")
    assert "this message only" in choice.inner_text()
    assert choice.locator("input:checked").evaluate("i => i.value") == "this message only"
    chat = _attach_and_ask(page, rota, False, "Who keeps the lamp on Tuesdays?")
    assert "Marta" in chat and "lighthouse-rota.md" in chat, chat[-500:]
    assert "read for this message only" in chat, chat[-500:]
    shot(page, "7-attached-once")
    # Not among my documents, and a new chat's question does not find it.
    page.get_by_role("tab", name="Documents").click()
    # Nothing is indexed on this fresh home: the tab says what to do, not a bare header.
    page.locator("#doc-status", has_text="Nothing indexed yet").wait_for(timeout=30_000)
    shot(page, "7b-no-documents")
    page.get_by_role("tab", name="Chat").click()
    assert "lighthouse-rota.md" not in _listed_documents(page)
    _new_chat(page)
    later = _ask(page, "Who keeps the lamp on Fridays, according to the lighthouse rota?")
    assert "lighthouse-rota.md" not in later, later[-500:]


def test_a_document_attached_and_kept_joins_my_documents_and_deleting_it_asks(page, tmp_path):
    notes = tmp_path / "harbour-notes.md"
    notes.write_text(HARBOUR)
    _new_chat(page)
    chat = _attach_and_ask(page, notes, True, "How often does the fog bell ring?")
    assert "harbour-notes.md" in chat and "for this message only" not in chat, chat[-500:]
    page.locator("#keep-docs label", has_text="only").click()  # back to the default
    assert "harbour-notes.md" in _listed_documents(page, "harbour-notes.md")
    # Deleting it starts from its row and asks first.
    page.get_by_role("tab", name="Documents").click()
    rows = page.locator("#doc-table .virtual-row")
    rows.filter(has_text="harbour-notes.md").locator(".body-cell").first.click()
    page.wait_for_function(
        "() => /^[0-9a-f]{12}$/.test("
        "document.querySelector('#doc-id textarea, #doc-id input').value)"
    )
    shot(page, "8-documents")
    page.once("dialog", lambda d: d.dismiss())
    page.locator("#doc-delete").click()
    page.locator("#doc-status", has_text="Nothing deleted").wait_for(timeout=30_000)
    assert "harbour-notes.md" in " | ".join(rows.all_inner_texts())
    page.once("dialog", lambda d: d.accept())
    page.locator("#doc-delete").click()
    page.locator("#doc-status", has_text="Deleted harbour-notes.md").wait_for(timeout=30_000)
    assert "harbour-notes.md" not in " | ".join(rows.all_inner_texts())
    page.get_by_role("tab", name="Chat").click()
