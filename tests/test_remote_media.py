"""Speech, embeddings, pictures and vision on an OpenAI-compatible endpoint, against a stub.

The stub (tests/openai_stub.py) speaks each route's wire format; the
adapters use the official openai client, as they do against vLLM, TEI or
LocalAI. Each family is checked for its answer, its price per unit, where
the ledger says it ran, and what a wrong-shaped reply or a dead server does
to the endpoint's health.
"""

from __future__ import annotations

import json
import socket
import wave

import pytest

from assistant.catalog.entries import Catalog
from assistant.flow.service import Assistant
from models import remote
from models.base import ModelUnavailable, Request
from models.remote_media import OpenAIEmbedder, OpenAIImages, OpenAITranscriber, OpenAIVision
from tests.openai_stub import PNG, StubServer


@pytest.fixture(scope="module")
def server():
    with StubServer(delay=1.0) as stub:
        yield stub


def _loaded(adapter):
    adapter.load()
    return adapter


def _wav(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000)
    return path


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def test_embeddings_come_back_in_order_with_the_servers_token_count(server):
    adapter = _loaded(OpenAIEmbedder(server.url, "vec"))
    texts = [f"text number {i}" for i in range(40)]  # two calls of EMBED_BATCH
    vectors = adapter.embed(texts)
    assert vectors[0] == [13.0, 3.0, 1.0] and vectors[39] == [14.0, 3.0, 1.0]
    assert len(vectors) == 40 and adapter.count_tokens(texts[32:]) == 8 * 3
    assert adapter.device == "remote:" + server.url.split("/")[2]


def test_a_transcription_keeps_segments_language_and_duration(server, tmp_path):
    adapter = _loaded(OpenAITranscriber(server.url, "whisper"))
    items = list(adapter.stream(Request(attachments=(_wav(tmp_path / "a.wav"),))))
    result = items[-1]
    assert items[0].startswith("[") and "hello from the stub" in items[0]
    assert result.text == "hello from the stub" and result.language == "en"
    assert result.usage.units_in == 2.5 and result.usage.unit == "audio_seconds"
    assert server.seen[-1] == {"model": "whisper", "bytes": server.seen[-1]["bytes"]}


def test_a_picture_is_saved_under_home_with_the_options_passed_on(server, tmp_path):
    adapter = _loaded(OpenAIImages(server.url, "painter", out_dir=tmp_path / "outputs"))
    options = (("steps", 4.0), ("seed", 7.0), ("width", 64.0), ("height", 64.0))
    result = adapter.run(Request(text="a red circle", options=options))
    [path] = result.files
    assert path.parent == tmp_path / "outputs" and path.read_bytes() == PNG
    assert (result.usage.units_out, result.usage.unit) == (1, "images")
    sent = server.seen[-1]
    assert sent["prompt"] == "a red circle" and sent["size"] == "64x64"
    assert (sent["steps"], sent["seed"], sent["response_format"]) == (4.0, 7.0, "b64_json")


def test_vision_sends_the_picture_as_an_image_url_part(server, tmp_path):
    picture = tmp_path / "p.png"
    picture.write_bytes(PNG)
    adapter = _loaded(OpenAIVision(server.url, "echo"))
    result = list(adapter.stream(Request(text="what is it?", attachments=(picture,))))[-1]
    assert result.text == "You said: what is it? [1 pictures]"
    [text, image] = server.seen[-1]["messages"][-1]["content"]
    assert text == {"type": "text", "text": "what is it?"}
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("adapter", "call", "what"),
    [
        (OpenAIEmbedder, lambda a, p: a.embed(["x"]), "embedding list"),
        (OpenAITranscriber, lambda a, p: a.run(Request(attachments=(p,))), "transcription"),
        (OpenAIImages, lambda a, p: a.run(Request(text="x")), "image generation"),
    ],
)
def test_a_wrong_shape_marks_the_endpoint_unhealthy_with_the_reason(
    server, tmp_path, adapter, call, what
):
    kwargs = {"out_dir": tmp_path} if adapter is OpenAIImages else {}
    with pytest.raises(ModelUnavailable, match=f"not .*OpenAI-compatible {what}"):
        call(_loaded(adapter(server.url, "wrong", **kwargs)), _wav(tmp_path / "a.wav"))
    state = remote.health(server.url)
    assert not state.ok and what in state.reason
    # The next good answer marks it healthy again.
    _loaded(OpenAIEmbedder(server.url, "vec")).embed(["back"])
    assert remote.health(server.url).ok


def test_the_health_check_names_what_is_wrong(server):
    assert remote.probe(server.url, "vec").ok
    assert "does not list a model named 'nope'" in remote.probe(server.url, "nope").reason
    server.models_reply = (200, b"<html>Welcome to nginx!</html>", "text/html")
    try:
        state = remote.probe(server.url, "vec")
    finally:
        server.models_reply = None
    assert not state.ok and "not an OpenAI-compatible model list" in state.reason
    dead = remote.probe(_dead_url(), "vec")
    assert not dead.ok and dead.reason.startswith("Endpoint unavailable:")


def _entry(model_id, family, tasks, url, model, prices):
    return {
        "id": model_id,
        "name": f"Lab {family} ({model})",
        "family": family,
        "tasks": tasks,
        "backend": "openai",
        "default_for": [],
        "source": {"endpoint": url, "model": model, "timeout_s": 2},
        "license": "Apache-2.0",
        "params_m": 0,
        "size_mb": 0,
        "memory_mb": 0,
        "built": True,
        "prices": {**prices, "source": "our lab's rate", "date": "2026-12"},
    }


def test_each_family_is_routed_priced_by_its_unit_and_recorded_where_it_ran(
    settings, server, tmp_path
):
    settings.ensure_home()
    dead = _dead_url()
    entries = [
        _entry("lab-whisper", "asr", ["asr"], server.url, "whisper", {"usd_per_minute": 0.01}),
        _entry(
            "lab-painter",
            "image",
            ["image_generation"],
            server.url,
            "painter",
            {"usd_per_image": 0.02},
        ),  # fmt: skip
        _entry("lab-dead-painter", "image", ["image_generation"], dead, "painter", {}),
    ]
    settings.catalog_file.write_text(json.dumps({"models": entries}))
    assistant = Assistant.from_settings(settings, progress=lambda m: None)
    where = "remote:" + server.url.split("/")[2]

    heard = assistant.ask(
        Request(
            text="transcribe",
            attachments=(_wav(settings.uploads_dir / "a.wav"),),
            model="lab-whisper",
            task="asr",
            transcribe_only=True,
        )
    )
    assert heard.status == "ok", heard.error
    assert heard.result.text == "hello from the stub"
    assert heard.cost.device == where and heard.cost.usd_local == pytest.approx(2.5 / 60 * 0.01)

    drawn = assistant.ask(Request(text="draw a red circle", model="lab-painter"))
    assert drawn.status == "ok", drawn.error
    assert drawn.cost.usd_local == pytest.approx(0.02)
    rows = {r["model"]: r for r in assistant.ledger.rows(limit=10)}
    assert rows["lab-whisper"]["device"] == rows["lab-painter"]["device"] == where

    down = assistant.ask(
        Request(text="draw a blue square", model="lab-dead-painter", task="image_generation")
    )
    assert down.status == "error" and down.error.startswith("Endpoint unavailable:")
    assert assistant.ledger.rows(limit=1)[0]["status"] == "error"
    listed = {
        r["id"]: r for r in Catalog.load(extra=settings.catalog_file).rows(settings.weights_dir)
    }
    assert "UNHEALTHY: Endpoint unavailable" in listed["lab-dead-painter"]["availability"]


def test_models_check_probes_each_remote_entry_and_shows_the_answer(settings, server):
    settings.ensure_home()
    entries = [
        _entry("lab-vec", "embed", ["rag"], server.url, "vec", {}),
        _entry("lab-gone", "embed", ["rag"], _dead_url(), "vec", {}),
    ]
    settings.catalog_file.write_text(json.dumps({"models": entries}))
    catalog = Catalog.load(extra=settings.catalog_file)
    rows = {r["id"]: r for r in catalog.rows(settings.weights_dir, probe=True)}
    assert rows["lab-vec"]["availability"].endswith("healthy: lists 'vec'")
    assert "UNHEALTHY: Endpoint unavailable" in rows["lab-gone"]["availability"]
    # Still selectable: the next request is how it recovers.
    assert rows["lab-gone"]["available"]
