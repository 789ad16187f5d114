"""The remote text backend against an OpenAI-compatible server on loopback.

The server is tests/openai_stub.py, speaking the same wire format as vLLM
or LocalAI; the adapter uses the official openai client, so what is tested
here is what a user pointing the assistant at their own server gets.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from assistant.accounting.ledger import Ledger
from assistant.catalog.backends import build_adapter
from assistant.catalog.entries import Catalog
from assistant.flow.pool import Pool
from assistant.flow.service import Assistant
from models.base import BadInput, Message, ModelUnavailable, Request, Result
from models.remote import OpenAIChat
from tests.openai_stub import StubServer


@pytest.fixture(scope="module")
def server():
    with StubServer(delay=3.0) as stub:
        yield stub


def _adapter(server, model="echo", **kwargs) -> OpenAIChat:
    adapter = OpenAIChat(server.url, model, **kwargs)
    adapter.load()
    return adapter


def _run(adapter, text="hello there", **kwargs):
    items = list(adapter.stream(Request(text=text, **kwargs)))
    return [i for i in items if isinstance(i, str)], items[-1]


def test_a_reply_streams_piece_by_piece_with_the_servers_token_counts(server):
    pieces, result = _run(_adapter(server), history=(Message("system", "Be brief."),))
    assert len(pieces) == 4 and "".join(pieces) == "You said: hello there"
    assert isinstance(result, Result) and result.text == "You said: hello there"
    # The stub counts words: "Be brief." + "hello there" in, four words out.
    assert (result.usage.units_in, result.usage.units_out) == (4, 4)
    assert server.seen[-1]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert server.seen[-1]["stream"] is True


def test_eight_concurrent_chats_each_get_their_own_reply(server):
    adapter = _adapter(server)
    assert adapter.concurrent_safe  # the pool lets these share one client
    prompts = [f"question number {i} about {w}" for i, w in enumerate("abcdefgh")]
    with ThreadPoolExecutor(8) as workers:
        results = list(workers.map(lambda p: _run(adapter, p)[1], prompts))
    assert [r.text for r in results] == [f"You said: {p}" for p in prompts]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("boom", "HTTP 500: the GPU fell over"),
        ("no-such-model", "does not serve a model named 'no-such-model'"),
        ("garbage", "not an OpenAI-compatible chat completion"),
        ("html", "not with an OpenAI-compatible chat completion"),
        ("midfail", "failed mid-answer: the model crashed"),
    ],
)
def test_a_misbehaving_server_gets_a_clear_message(server, model, message):
    with pytest.raises(ModelUnavailable, match=message):
        _run(_adapter(server, model))


def test_a_slow_or_stalled_server_is_given_up_on_after_the_timeout(server):
    for model in ("slow", "stall"):
        started = time.perf_counter()
        with pytest.raises(ModelUnavailable, match="did not answer within 0.5 s"):
            _run(_adapter(server, model, timeout_s=0.5))
        assert time.perf_counter() - started < 2.5  # not the server's 3 s


def test_an_endpoint_that_is_down_says_so_at_once():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = OpenAIChat(f"http://127.0.0.1:{port}/v1", "echo")
    adapter.load()
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="cannot be reached.*server is running"):
        _run(adapter)
    assert time.perf_counter() - started < 2.0  # no retries with backoff


def test_a_missing_api_key_is_named(monkeypatch, server):
    monkeypatch.delenv("STUB_KEY", raising=False)
    with pytest.raises(ModelUnavailable, match="set STUB_KEY"):
        OpenAIChat(server.url, "echo", api_key_env="STUB_KEY").load()


def test_stop_hangs_up_so_the_server_stops_generating(server):
    adapter = _adapter(server, "endless")
    cancel = threading.Event()
    pieces = []
    for item in adapter.stream(Request(text="go"), cancel):
        if isinstance(item, str):
            pieces.append(item)
            if len(pieces) == 3:
                cancel.set()
    assert item.text == "tick tick tick"
    assert server.hung_up.wait(5.0)  # the server saw the connection close


def test_old_turns_are_trimmed_to_the_window_and_the_user_is_told(server):
    adapter = _adapter(server, context_window=100)  # 80 tokens of prompt ≈ 240 characters
    history = tuple(
        Message(r, f"{r} turn {i} " + "x" * 40) for i in range(6) for r in ("user", "assistant")
    )
    _, result = _run(adapter, history=history, max_new_tokens=20)
    sent = server.seen[-1]["messages"]
    assert sum(len(m["content"]) for m in sent) <= (100 - 20) * 3
    assert sent[-2]["content"].startswith("assistant turn 5") and len(sent) < 13
    assert "oldest exchange" in result.notes[0]
    with pytest.raises(BadInput, match="context window of 100 tokens"):
        _run(adapter, text="y" * 1000, max_new_tokens=20)


def test_a_server_without_usage_gets_estimated_counts_and_a_note(server):
    _, result = _run(_adapter(server, "no-usage"))
    assert result.usage.units_out > 0
    assert any("estimated" in n for n in result.notes)


# --- through the whole assistant: catalog file, router override, ledger, costs ---


def _entry(model_id, url, model="echo", **extra):
    return {
        "id": model_id,
        "name": f"Lab server ({model})",
        "family": "text",
        "tasks": ["text"],
        "backend": "openai",
        "default_for": [],
        "source": {"endpoint": url, "model": model, "timeout_s": 1},
        "license": "Apache-2.0",
        "params_m": 7000,
        "size_mb": 0,
        "memory_mb": 0,
        "built": True,
        "context_window": 4096,
        **extra,
    }


def test_a_remote_entry_in_the_users_catalog_is_routed_priced_and_recorded(settings, server):
    settings.ensure_home()
    prices = {
        "usd_per_1m_input_tokens": 1.0,
        "usd_per_1m_output_tokens": 2.0,
        "source": "our lab's internal rate",
        "date": "2026-11",
    }
    settings.catalog_file.write_text(
        json.dumps(
            {
                "models": [
                    _entry("lab-echo", server.url, prices=prices),
                    _entry("lab-down", "http://127.0.0.1:9/v1"),
                ]
            }
        )
    )
    assistant = Assistant.from_settings(settings, progress=lambda m: None)
    row = next(
        r
        for r in Catalog.load(extra=settings.catalog_file).rows(settings.weights_dir)
        if r["id"] == "lab-echo"
    )
    assert row["source_kind"] == "remote" and row["available"]

    outcome = assistant.ask(Request(text="price me", prefer=(("text", "lab-echo"),)))
    assert outcome.status == "ok", outcome.error
    assert outcome.route.model == "lab-echo" and outcome.result.text == "You said: price me"
    cost = outcome.cost
    # Where the work ran: the endpoint's host and port, on the route card and in the ledger.
    where = "remote:" + server.url.split("/")[2]
    assert cost.device == where and cost.device_seconds == 0 and cost.energy_j == 0
    units_in, units_out = outcome.result.usage.units_in, outcome.result.usage.units_out
    assert cost.usd_local == pytest.approx((units_in * 1.0 + units_out * 2.0) / 1e6)
    assert cost.usd_cloud is not None  # the dated cloud reference, beside it
    [ledger_row] = assistant.ledger.rows(limit=1)
    assert ledger_row["model"] == "lab-echo" and ledger_row["device"] == where

    # Down: a clear message, recorded, and the next request still works.
    down = assistant.ask(Request(text="hello?", model="lab-down"))
    assert down.status == "error" and down.error.startswith("Endpoint unavailable:")
    assert "cannot be reached" in down.error
    again = assistant.ask(Request(text="are you back?", model="lab-echo"))
    assert again.status == "ok", again.error


def test_a_broken_user_catalog_is_named_and_the_builtin_one_still_serves(settings):
    settings.ensure_home()
    settings.catalog_file.write_text('{"models": [{"id": "half an entry"}]}')
    with pytest.raises(BadInput, match="catalog.json is not usable"):
        Catalog.load(extra=settings.catalog_file)
    warnings = []
    assistant = Assistant.from_settings(settings, progress=warnings.append)
    assert any("built-in catalog only" in w for w in warnings)
    assert "smollm2-135m-instruct" in assistant.catalog.entries


def test_the_builtin_openai_entry_waits_for_its_key(monkeypatch, settings):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings.ensure_home()
    entry = Catalog.load().get("gpt-4o-mini")
    ok, why = entry.availability(settings.weights_dir)
    assert not ok and "OPENAI_API_KEY" in why
    pool = Pool(lambda m: build_adapter(entry, settings), 1024, {entry.id: 0})
    assistant = Assistant(settings, Catalog.load(), pool, Ledger(settings.home / "l.sqlite"))
    outcome = assistant.ask(Request(text="hi", model="gpt-4o-mini"))
    assert outcome.status == "error" and "set OPENAI_API_KEY" in outcome.error
