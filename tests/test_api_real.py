"""The running server on loopback, called with the official openai client (real models).

One process serves the UI at / and the API at /v1, as `make run` and Spaces do.
"""

from __future__ import annotations

import base64
import json
import math
import time
import urllib.request
from pathlib import Path

import pytest

from models.base import Request
from tests.realenv import real_settings, served

pytestmark = pytest.mark.real
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served(real_settings(tmp_path_factory.mktemp("api") / "home")) as (url, assistant):
        yield url.rstrip("/"), assistant


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)


def test_a_streamed_chat_arrives_in_pieces_and_is_in_the_ledger(client, server):
    stream = client.chat.completions.create(
        model="auto",
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=24,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    pieces = [d.content for d in deltas if d.content]
    assert len(pieces) > 3 and "Paris" in "".join(pieces)
    assert chunks[-1].usage.completion_tokens >= len(pieces) // 2
    _, assistant = server
    row = next(r for r in assistant.ledger.rows(limit=5) if r["source"] == "api")
    assert row["task"] == "text" and row["status"] == "ok" and row["usd_cloud"] > 0


def test_hanging_up_stops_generation(server):
    import httpx

    url, assistant = server
    body = {
        "model": "auto",
        "stream": True,
        "max_tokens": 256,
        "user": "hangup",
        "messages": [
            {"role": "user", "content": "Write a long story about a dragon who learns to fly."}
        ],
    }
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
        for i, _ in enumerate(response.iter_lines()):
            if i == 6:
                break  # leaving the block closes the connection
    deadline = time.time() + 10
    row = None
    while time.time() < deadline:
        rows = [r for r in assistant.ledger.rows(limit=10) if r["session_id"] == "api-hangup"]
        if rows and rows[0]["status"] != "started":
            row = rows[0]
            break
        time.sleep(0.1)
    assert row is not None, "the request never finished after the hang-up"
    # Six events read is ~5 tokens; the model stops at its next token after the hang-up.
    # A hang-up is a stop (#18): the row says so, with the tokens produced until then.
    assert row["status"] == "stopped" and row["units_out"] < 20
    # Unstopped, it runs to the real tier's 48-token cap. A counting prompt did not: "Count
    # from 1 to 500" got 33 tokens on one CPU, "List the numbers from 1 to 100" got 16
    # ("1234567890 is a valid output.") on another (int8 greedy answers move with the CPU's
    # kernels); a story runs on.
    full = assistant.ask(Request(text=body["messages"][0]["content"]))
    assert full.result.usage.units_out >= 40 > row["units_out"]


def test_a_plain_chat_names_the_model_that_answered(client):
    reply = client.chat.completions.create(
        model="smollm2-135m-instruct",
        max_tokens=24,
        messages=[
            {"role": "system", "content": "Answer in one short sentence."},
            {"role": "user", "content": "What is the capital of France?"},
        ],
    )
    assert reply.model == "smollm2-135m-instruct" and "Paris" in reply.choices[0].message.content
    assert reply.usage.prompt_tokens > 10


def test_a_generated_wav_is_transcribed(client):
    # tests/data/speech_en.wav was made with espeak-ng (see MODEL_PACKS.md's recipe).
    with open(DATA / "speech_en.wav", "rb") as f:
        out = client.audio.transcriptions.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    words = {w.strip(".,").lower() for w in out.text.split()}
    assert len({"quick", "fox", "lazy", "report", "office"} & words) >= 4, out.text
    assert out.segments and out.segments[0].start == 0.0 and out.language == "en"


def test_a_picture_sent_inline_is_read_and_answered(client):
    import skimage

    photo = Path(skimage.__file__).parent / "data" / "chelsea.png"
    url = "data:image/png;base64," + base64.b64encode(photo.read_bytes()).decode()
    parts = [
        {"type": "text", "text": "What animal is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    reply = client.chat.completions.create(
        model="auto", max_tokens=32, messages=[{"role": "user", "content": parts}]
    )
    assert "cat" in reply.choices[0].message.content.lower()
    assert reply.model_extra["assistant"]["route"]["task"] == "vision"


def test_a_picture_is_drawn_by_the_demo_model(client):
    import io

    from PIL import Image

    out = client.images.generate(prompt="a yellow square on a black background")
    with Image.open(io.BytesIO(base64.b64decode(out.data[0].b64_json))) as img:
        assert img.size == (256, 256) and img.text["model"] == "demo-scenes"


def test_embeddings_put_related_texts_closer(client):
    out = client.embeddings.create(
        model="all-minilm-l6-v2",
        input=[
            "How do I bake bread?",
            "A recipe for a sourdough loaf",
            "The stock market fell today",
        ],
    )
    a, b, c = (d.embedding for d in out.data)
    assert len(a) == 384 and out.usage.prompt_tokens > 10

    def cos(x, y):
        return sum(p * q for p, q in zip(x, y, strict=True)) / math.sqrt(
            sum(p * p for p in x) * sum(q * q for q in y)
        )

    assert cos(a, b) > cos(a, c) + 0.2


def test_error_shapes_reach_the_client_as_its_own_exceptions(client, monkeypatch):
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="non-empty list"):
        client.chat.completions.create(model="auto", messages=[])
    # A hub image model where the hub cannot be reached: a clear 503, never a fake picture.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never a 5 GB download from a test
    with pytest.raises(openai.InternalServerError) as err:
        client.images.generate(model="sd-turbo", prompt="a red circle on a blue background")
    assert err.value.status_code == 503 and "huggingface.co" in err.value.message


def test_nothing_outside_the_app_is_served(server):
    url, _ = server
    with urllib.request.urlopen(url + "/", timeout=10) as response:  # the UI, same port
        assert response.status == 200 and b"gradio" in response.read().lower()
    for path in (
        "/v1/../../../etc/passwd",
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../../../etc/passwd",
        "/file=/etc/passwd",
    ):
        request = urllib.request.Request(url + path)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            assert 400 <= err.code < 500, (path, err.code)
            continue
        assert b"root:" not in body, path


def test_the_remote_backend_can_use_this_server(server, tmp_path):
    """One assistant as another's remote model: the backend against a real OpenAI-style server."""
    from assistant.flow.service import Assistant
    from assistant.settings import Settings

    url, _ = server
    settings = Settings(home=tmp_path / "home", max_new_tokens=24)
    settings.ensure_home()
    settings.catalog_file.write_text(
        json.dumps(
            {
                "models": [
                    {
                        "id": "upstream",
                        "name": "the other assistant",
                        "family": "text",
                        "tasks": ["text"],
                        "backend": "openai",
                        "default_for": [],
                        "license": "Apache-2.0",
                        "params_m": 135,
                        "size_mb": 0,
                        "memory_mb": 0,
                        "built": True,
                        "context_window": 8192,
                        "source": {"endpoint": url + "/v1", "model": "smollm2-135m-instruct"},
                    }
                ]
            }
        )
    )
    outcome = Assistant.from_settings(settings, progress=lambda m: None).ask(
        Request(text="What is the capital of France?", model="upstream")
    )
    assert outcome.status == "ok", outcome.error
    assert "Paris" in outcome.result.text and outcome.cost.device == "remote:" + url.split("/")[2]
    assert outcome.result.usage.units_out > 0 and not outcome.result.notes  # real counts


def _mcp(url: str, work):
    """Run ``work(session)`` against the app's MCP server, as an agent would."""
    import asyncio

    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main():
        async with streamable_http_client(url + "/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)

    return asyncio.run(main())


def test_agents_see_four_tools_over_mcp_and_each_call_is_in_the_ledger(server):
    url, assistant = server

    async def work(session):
        tools = (await session.list_tools()).tools
        answer = await session.call_tool("ask", {"question": "What is the capital of France?"})
        picture = await session.call_tool(
            "draw_picture", {"prompt": "a red circle on a blue background", "seed": 7}
        )
        # A file goes to an MCP tool as a URL or, as here, inline as a data: URL.
        wav = base64.b64encode((Path(__file__).parent / "data" / "speech_en.wav").read_bytes())
        heard = await session.call_tool(
            "transcribe", {"audio": "data:audio/wav;base64," + wav.decode()}
        )
        import skimage

        photo = Path(skimage.__file__).parent / "data" / "chelsea.png"
        png = base64.b64encode(photo.read_bytes())
        seen = await session.call_tool(
            "look_at_picture",
            {"image": "data:image/png;base64," + png.decode(), "question": "What animal is this?"},
        )
        return tools, answer, picture, heard, seen

    tools, answer, picture, heard, seen = _mcp(url, work)
    # Only the tools made for agents: the chat UI's own events are not listed.
    assert sorted(t.name for t in tools) == ["ask", "draw_picture", "look_at_picture", "transcribe"]
    ask = next(t for t in tools if t.name == "ask")
    assert "router" in ask.description and ask.inputSchema["required"] == ["question"]

    assert not answer.isError
    text = answer.content[0].text
    assert "Paris" in text and "smollm2-135m-instruct (text;" in text, text

    assert not picture.isError
    image = next((c for c in picture.content if c.type == "image"), None)
    assert image is not None, picture.content
    import io

    from PIL import Image

    drawn = Image.open(io.BytesIO(base64.b64decode(image.data)))
    assert drawn.size[0] >= 32 and drawn.format == "PNG"

    assert not heard.isError, heard.content
    words = heard.content[0].text.lower()
    assert "fox" in words and "— whisper-base (asr;" in words, words
    assert not seen.isError, seen.content
    assert "efficientnet-lite0+rapidocr" in seen.content[0].text, seen.content

    rows = [r for r in assistant.ledger.rows(limit=20) if r["source"] == "mcp"]
    assert {r["task"] for r in rows} >= {"text", "image_generation", "asr", "vision"}
    assert all(r["status"] == "ok" for r in rows)


def test_a_bad_mcp_call_is_an_error_result_not_a_crash(server):
    url, _ = server

    async def work(session):
        return await session.call_tool("ask", {"question": "Hi", "model": "no-such-model"})

    result = _mcp(url, work)
    text = " ".join(c.text for c in result.content if c.type == "text")
    assert result.isError and "no-such-model" in text, text
