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
    from assistant.web.ui import build

    demo, assistant = build(real_settings(tmp_path_factory.mktemp("ui") / "home"))
    demo.queue().launch(
        server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield demo, assistant
    finally:
        demo.close()


def test_a_program_asks_through_the_documented_api_and_the_ledger_says_so(app):
    from gradio_client import Client

    demo, assistant = app
    client = Client(demo.local_url, verbose=False)
    # The chat UI's own events are not the documented API (assistant/web/ui/tools.py).
    assert sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == [
        "/ask",
        "/draw_picture",
        "/look_at_picture",
        "/transcribe",
    ]
    reply = client.predict("What is the capital of France?", api_name="/ask")
    assert "Paris" in reply and "— smollm2-135m-instruct (text; plain question" in reply, reply
    row = assistant.ledger.rows(limit=1)[0]
    assert row["source"] == "gradio-api" and row["status"] == "ok" and row["units_out"] > 0


def test_an_empty_question_is_a_clear_error_not_an_error_page(app):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    demo, assistant = app
    client = Client(demo.local_url, verbose=False)
    with pytest.raises(AppError, match="(?i)empty"):
        client.predict("   ", api_name="/ask")
    assert assistant.ledger.rows()[0]["status"] == "error"


def test_an_uploaded_recording_is_transcribed(app):
    from pathlib import Path

    from gradio_client import Client, handle_file

    demo, assistant = app
    client = Client(demo.local_url, verbose=False)
    clip = Path(__file__).parent / "data" / "speech_en.wav"
    reply = client.predict(handle_file(str(clip)), api_name="/transcribe")
    words, route = reply.rsplit("\n", 1)
    assert "fox" in words.lower() and "lazy dog" in words.lower(), reply  # no answer chained
    assert route.startswith("— whisper-base (asr;"), reply
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
    doc.write_text(
        "Rhyolite magma is rich in silica, which makes it viscous, so rhyolite "
        "volcanoes erupt explosively.\n\nBasalt lava is fluid and spreads in flows."
    )
    status, table, _ = client.predict([handle_file(str(doc))], False, api_name="/index_documents")
    assert "Indexed volcano.txt" in status
    rows = table["data"] if isinstance(table, dict) else table
    assert rows[0][0] == "volcano.txt" and rows[0][2] == "complete"
    reply = client.predict("Why do rhyolite volcanoes erupt explosively?", api_name="/ask")
    assert "[1] volcano.txt — line 1" in reply, reply
    # Grounded work goes to the stronger model where it can run (the coder pack).
    from assistant.flow.grounded import grounded_model

    answerer = (grounded_model(assistant) or ("smollm2-135m-instruct",))[0]
    assert f"— all-minilm-l6-v2 → {answerer} (rag;" in reply, reply
    status, rows = client.predict(rows[0][-1], api_name="/delete_document")
    assert "Deleted volcano.txt" in status
