"""The /v1 API's request checking and error shapes, on the fake models (fast tier).

The official openai client against the real models is in test_api_real.py.
"""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.web.api import MAX_JSON_BYTES, add_api
from models.base import Result, Usage


@pytest.fixture
def client(assistant):
    app = FastAPI()
    add_api(app, assistant)
    return TestClient(app)


def _chat(client, body, **kwargs):
    return client.post("/v1/chat/completions", json=body, **kwargs)


HELLO = {"model": "auto", "messages": [{"role": "user", "content": "Hello"}]}


def _error(response, status):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_a_completion_goes_through_the_router_and_the_ledger(client, assistant, fake_chat):
    body = {
        **HELLO,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        "user": "ana",
        "max_tokens": 5000,
    }
    data = _chat(client, body).json()
    assert data["choices"][0]["message"]["content"] == "Paris is the capital of France."
    assert data["model"] == "smollm2-135m-instruct" and data["usage"]["completion_tokens"] == 6
    seen = fake_chat.seen[-1]
    assert seen.text == "Hi" and seen.history[0].role == "system"
    assert seen.user == "local"  # the body's "user" names a session, never who asks (#17)
    assert seen.max_new_tokens == 256  # capped by ASSISTANT_MAX_NEW_TOKENS
    [row] = assistant.ledger.rows(limit=1)
    assert row["source"] == "api" and row["session_id"] == "api-ana" and row["status"] == "ok"
    assert data["assistant"]["route"]["reason"] and data["assistant"]["cost"]["device"]


def test_a_streamed_completion_is_server_sent_events_ending_in_done(client):
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={**HELLO, "stream": True, "stream_options": {"include_usage": True}},
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == "Paris is the capital of France."
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["usage"]["completion_tokens"] == 6


def test_a_model_that_answers_whole_is_streamed_as_one_piece(client, fake_chat, monkeypatch):
    # A picture's reader (or any run()-only adapter) yields no pieces, only its Result:
    # the stream still carries the answer, once (a replica reading through /v1 needs it).
    whole = Result(text="A red square.", usage=Usage(1, 3, "tokens"))
    monkeypatch.setattr(fake_chat, "stream", lambda request, cancel=None: iter([whole]))
    with client.stream("POST", "/v1/chat/completions", json={**HELLO, "stream": True}) as reply:
        lines = [line for line in reply.iter_lines() if line]
    events = [json.loads(line[6:]) for line in lines[:-1]]
    pieces = [e["choices"][0]["delta"].get("content") for e in events]
    assert [p for p in pieces if p] == ["A red square."]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"model": "auto"}, "messages", "non-empty list"),
        ({**HELLO, "messages": [{"role": "wizard", "content": "hi"}]}, "messages", "role"),
        ({**HELLO, "messages": [{"role": "assistant", "content": "hi"}]}, "messages", "last"),
        ({**HELLO, "messages": [{"role": "user", "content": 42}]}, "messages", "content"),
        (
            {**HELLO, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages",
            "data:image",
        ),
        (
            {**HELLO, "messages": [{"role": "user", "content": [{"type": "audio"}]}]},
            "messages",
            "parts must be text",
        ),
        ({**HELLO, "max_tokens": -3}, "max_tokens", "positive"),
        ({**HELLO, "temperature": "hot"}, "temperature", "0 to 2"),
        ({**HELLO, "stream": "yes"}, "stream", "true or false"),
        ({**HELLO, "model": "whisper-base"}, "model", "serves asr"),
    ],
)
def test_a_malformed_chat_request_is_a_400_naming_the_field(client, body, param, fragment):
    error = _error(_chat(client, body), 400)
    assert error["param"] == param and fragment in error["message"]


def test_bad_bodies_get_clean_4xx(client, assistant):
    not_json = client.post(
        "/v1/chat/completions", content=b"{bad", headers={"content-type": "application/json"}
    )
    assert "not valid JSON" in _error(not_json, 400)["message"]
    as_form = client.post("/v1/chat/completions", data={"messages": "hi"})
    assert "application/json" in _error(as_form, 415)["message"]
    huge = client.post(
        "/v1/chat/completions",
        content=b"x" * (MAX_JSON_BYTES + 1),
        headers={"content-type": "application/json"},
    )
    _error(huge, 413)
    unknown = _chat(client, {**HELLO, "model": "gpt-9"})
    error = _error(unknown, 404)
    assert error["code"] == "model_not_found" and "smollm2-135m-instruct" in error["message"]
    empty = _chat(client, {**HELLO, "messages": [{"role": "user", "content": "  "}]})
    assert "empty" in _error(empty, 400)["message"]
    assert _error(client.post("/v1/files"), 404)["code"] == "unknown_url"
    # Rejected requests are in the ledger too, as they are from the UI.
    assert any(r["source"] == "api" and r["status"] == "error" for r in assistant.ledger.rows())


def test_embeddings_keep_order_and_report_tokens(client):
    body = {"input": ["red apples", "green pears"], "model": "text-embedding-3-small"}
    data = client.post("/v1/embeddings", json=body).json()
    assert [d["index"] for d in data["data"]] == [0, 1] and len(data["data"][0]["embedding"]) == 64
    assert data["model"] == "all-minilm-l6-v2" and data["usage"]["prompt_tokens"] > 0
    for bad in ([], [""], "", [1, 2], ["x"] * 2049):
        _error(client.post("/v1/embeddings", json={"input": bad}), 400)
    _error(
        client.post("/v1/embeddings", json={"input": "x", "model": "smollm2-135m-instruct"}), 400
    )


def test_a_transcription_upload_is_checked_and_kept_inside_home(client, settings):
    not_form = client.post("/v1/audio/transcriptions", json={"file": "x"})
    _error(not_form, 415)
    no_file = client.post(
        "/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"other": ("a.txt", b"x")}
    )
    assert _error(no_file, 400)["param"] == "file"
    empty = client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1"},
        files={"file": ("../../../etc/evil.wav", b"")},
    )
    assert "empty" in _error(empty, 400)["message"]
    fmt = client.post(
        "/v1/audio/transcriptions",
        data={"response_format": "srt"},
        files={"file": ("a.wav", b"RIFF")},
    )
    assert _error(fmt, 400)["param"] == "response_format"
    notes = ("../../x/notes.wav", b"not a recording at all")
    garbage = client.post(
        "/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"file": notes}
    )
    _error(garbage, 400)
    saved = list((settings.uploads_dir / "api").rglob("*"))
    assert all(p.resolve().is_relative_to(settings.home.resolve()) for p in saved)
    assert not any("evil" in p.name or "notes" in p.name for p in saved)


def test_an_image_request_returns_a_png_that_carries_its_recipe(client, monkeypatch):
    import base64
    import io

    from PIL import Image

    response = client.post("/v1/images/generations", json={"prompt": "a red circle"})
    assert response.status_code == 200, response.text
    [item] = response.json()["data"]
    with Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))) as img:
        assert img.format == "PNG" and img.text["model"] == "demo-scenes"
        assert img.text["prompt"] == "a red circle"
    assert response.json()["assistant"]["route"]["task"] == "image_generation"
    _error(client.post("/v1/images/generations", json={"prompt": " "}), 400)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never a 5 GB download from a test
    edit = client.post("/v1/images/generations", json={"prompt": "x", "model": "sd-turbo"})
    # A hub model on a machine without the hub: a clear 503, never a fake picture.
    assert "huggingface.co" in _error(edit, 503)["message"]


def test_an_api_key_is_required_when_configured(assistant):
    from dataclasses import replace

    assistant.settings = replace(assistant.settings, api_key="s3cret")
    app = FastAPI()
    add_api(app, assistant)
    client = TestClient(app)
    assert _error(client.get("/v1/models"), 401)["code"] == "invalid_api_key"
    ok = client.get("/v1/models", headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["data"][0]["id"] == "auto"


def test_on_zerogpu_every_model_call_runs_inside_spaces_gpu(assistant, monkeypatch):
    import sys
    import types

    entered = []

    def gpu_decorator(duration):
        def wrap(fn):
            def inside(*args, **kwargs):
                entered.append(fn.__name__)
                return fn(*args, **kwargs)

            return inside

        return wrap

    fake = types.ModuleType("spaces")
    fake.GPU = gpu_decorator
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    app = FastAPI()
    add_api(app, assistant)
    client = TestClient(app)
    assert _chat(client, HELLO).status_code == 200
    with client.stream("POST", "/v1/chat/completions", json={**HELLO, "stream": True}) as r:
        assert r.status_code == 200 and list(r.iter_lines())
    embedded = client.post("/v1/embeddings", json={"model": "auto", "input": "hi"})
    assert embedded.status_code == 200, embedded.text
    assert entered == ["ask", "handle", "embed"]
