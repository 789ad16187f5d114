"""The running app, driven through gradio_client as another program would."""

from __future__ import annotations

import socket

import pytest

from tests.realenv import real_settings

pytestmark = pytest.mark.real


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from assistant.ui import build

    demo, assistant = build(real_settings(tmp_path_factory.mktemp("ui") / "home"))
    demo.queue().launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield demo, assistant
    finally:
        demo.close()


def test_message_streams_a_reply_and_records_a_ledger_row(app):
    from gradio_client import Client

    demo, assistant = app
    client = Client(demo.local_url, verbose=False)
    job = client.submit({"text": "What is the capital of France?", "files": []}, api_name="/chat")
    updates = list(job)  # every streamed update the server sent
    final_chat = job.result()[1]

    # Streamed: the reply grew over several updates before the final one.
    replies = [u[1][-1]["content"] for u in updates if u[1] and u[1][-1]["role"] == "assistant"]
    texts = [r if isinstance(r, str) else str(r) for r in replies]
    assert len(set(texts)) > 3, f"expected a streamed reply, got {len(updates)} updates"

    answer = [m for m in final_chat if m["role"] == "assistant" and not m.get("metadata")]
    assert any("Paris" in str(m["content"]) for m in answer), final_chat
    badge = [m for m in final_chat if (m.get("metadata") or {}).get("title")]
    assert badge and badge[-1]["metadata"]["title"].startswith("smollm2-135m-instruct · text")
    assert "plain question" in str(badge[-1]["content"])

    panel = job.result()[2]
    rows = panel["data"] if isinstance(panel, dict) else panel
    assert rows and rows[0][1] == "smollm2-135m-instruct · text" and rows[0][-1] == "ok"
    ledger_rows = [r for r in assistant.ledger.rows() if r["source"] == "ui"]
    assert ledger_rows[0]["status"] == "ok" and ledger_rows[0]["units_out"] > 0


def test_empty_message_gets_a_clear_answer_not_an_error_page(app):
    from gradio_client import Client

    demo, assistant = app
    client = Client(demo.local_url, verbose=False)
    chat = client.predict({"text": "   ", "files": []}, api_name="/chat")[1]
    assert "empty" in str(chat[-2]["content"]).lower()
    assert assistant.ledger.rows()[0]["status"] == "error"


def test_uploaded_recording_shows_a_timecoded_transcript(app):
    from pathlib import Path

    from gradio_client import Client, handle_file

    demo, assistant = app
    client = Client(demo.local_url, verbose=False)
    clip = Path(__file__).parent / "data" / "speech_en.wav"
    chat = client.predict(
        {"text": "transcribe this", "files": [handle_file(str(clip))]}, api_name="/chat"
    )[1]
    from assistant.ui.app import text_of

    reply = text_of(chat[-2]["content"])
    assert reply.startswith("[00:00–") and "fox" in reply.lower(), reply
    assert chat[-1]["metadata"]["title"].startswith("whisper-base · asr")
    row = assistant.ledger.rows()[0]
    assert row["task"] == "asr" and row["status"] == "ok" and row["unit"] == "audio_seconds"
    # The upload was stored inside ASSISTANT_HOME, nowhere else.
    uploads = list(assistant.settings.uploads_dir.rglob("speech_en.wav"))
    assert uploads, "the upload should be kept under ASSISTANT_HOME/uploads"


def test_a_document_indexed_in_its_tab_is_cited_in_the_chat(app, tmp_path):
    # Last in this module: from here on the session has documents.
    from gradio_client import Client, handle_file

    demo, assistant = app
    client = Client(demo.local_url, verbose=False)
    doc = tmp_path / "volcano.txt"
    doc.write_text("Rhyolite magma is rich in silica, which makes it viscous, so rhyolite "
                   "volcanoes erupt explosively.\n\nBasalt lava is fluid and spreads in flows.")
    status, table, _ = client.predict([handle_file(str(doc))], False, api_name="/index_documents")
    assert "Indexed volcano.txt" in status
    rows = table["data"] if isinstance(table, dict) else table
    assert rows[0][0] == "volcano.txt" and rows[0][2] == "complete"
    chat = client.predict({"text": "Why do rhyolite volcanoes erupt explosively?", "files": []},
                          api_name="/chat")[1]  # fmt: skip
    answer = [m for m in chat if m["role"] == "assistant" and not m.get("metadata")][-1]
    from assistant.ui.app import text_of

    shown = text_of(answer["content"])
    assert "**Sources**" in shown and "[1] volcano.txt — line 1" in shown
    title = [m for m in chat if (m.get("metadata") or {}).get("title")][-1]["metadata"]["title"]
    assert title.startswith("all-minilm-l6-v2 → smollm2-135m-instruct · rag → text")
    status, rows = client.predict(rows[0][-1], api_name="/delete_document")
    assert "Deleted volcano.txt" in status
