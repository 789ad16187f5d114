"""The flow of one request with a fake model: check, route, run, record."""

from __future__ import annotations

import pytest

from assistant.flow.outcome import Outcome
from assistant.flow.pool import Loading, loading_text
from assistant.flow.primed import EXAMPLES
from models.base import Message, Request
from tests.conftest import FakeChat

CONTRACT = {"request_id", "route", "steps", "output", "usage", "timings", "cost", "status", "error"}


def test_a_question_streams_and_is_recorded(assistant, fake_chat):
    items = list(assistant.handle(Request(text="What is the capital of France?")))
    outcome = items[-1]
    assert isinstance(outcome, Outcome) and outcome.status == "ok"
    # Its first use: what loads is said, by name and size, before any word.
    assert items[0] == Loading(
        "smollm2-135m-instruct", "SmolLM2-135M-Instruct (CTranslate2 int8)", 98
    )
    assert loading_text(items[0]) == "Loading SmolLM2-135M-Instruct (98 MB)…"
    assert "".join(items[1:-1]) == outcome.result.text == fake_chat.replies[0]
    again = list(assistant.handle(Request(text="And of Spain?")))
    assert not any(isinstance(i, Loading) for i in again)  # resident now: nothing to say
    row = assistant.ledger.get(outcome.request_id)
    assert (row["status"], row["task"], row["model"]) == ("ok", "text", "smollm2-135m-instruct")
    # The model read the question after the example exchanges it is primed with.
    primed_words = sum(len(m.content.split()) for m in EXAMPLES)
    assert row["units_in"] == 6 + primed_words and row["units_out"] == 6


def test_the_json_has_exactly_the_contract_keys(assistant):
    data = assistant.ask(Request(text="hi")).as_json()
    assert set(data) == CONTRACT
    assert {"task", "model", "reason", "confidence", "alternatives"} <= set(data["route"])
    assert set(data["timings"]) == {"queue_s", "load_s", "run_s"}
    assert data["cost"]["device"] == "cpu" and data["cost"]["usd_local"] >= 0


def test_empty_and_blank_messages_are_refused_and_recorded(assistant, fake_chat):
    for text in ("", "   \n\t "):
        outcome = assistant.ask(Request(text=text))
        assert outcome.status == "error" and "empty" in outcome.error
        row = assistant.ledger.get(outcome.request_id)
        assert row["status"] == "error" and row["reason"] == "rejected before routing"
    assert fake_chat.seen == [] and assistant.pool.resident() == []


def test_a_megabyte_message_is_refused_without_loading_a_model(assistant, fake_chat):
    outcome = assistant.ask(Request(text="a" * 1_000_000))
    assert outcome.status == "error" and "limit is 20,000" in outcome.error
    assert outcome.error_type == "BadInput" and fake_chat.loads == 0


def test_control_characters_never_reach_the_model(assistant, fake_chat):
    assistant.ask(Request(text="hel\x00lo\x1b[31m there\nfriend\t!"))
    assert fake_chat.seen[-1].text == "hello[31m there\nfriend\t!"


def test_unknown_model_names_the_known_ones(assistant):
    outcome = assistant.ask(Request(text="hi", model="gpt-9"))
    assert outcome.status == "error" and "smollm2-135m-instruct" in outcome.error


def test_an_edit_without_a_reachable_image_model_says_so_and_is_recorded(assistant, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # sd-turbo is a hub model
    outcome = assistant.ask(Request(text="make the sky pink", task="image_edit"))
    # Said before anything runs (#18): which models could edit, and why none can load here.
    assert outcome.status == "error" and "No model that can edit a picture" in outcome.error
    assert "sd-turbo" in outcome.error and "not in the local cache" in outcome.error
    row = assistant.ledger.get(outcome.request_id)
    assert row["task"] == "image_edit" and row["status"] == "error"
    assert outcome.result is None  # no fake output


def test_history_reaches_the_model(assistant, fake_chat):
    history = (Message("user", "I live in Berlin."), Message("assistant", "Nice."))
    assistant.ask(Request(text="Where do I live?", history=history))
    # The turns as they were, after the follow-up instruction (flow/primed.py) where
    # a stronger model is installed to take follow-ups (the coder pack), or with none.
    seen = fake_chat.seen[-1].history
    assert tuple(m for m in seen if m.role != "system") == history


def test_a_crashing_model_is_reported_and_the_next_request_works(assistant, fake_chat):
    fake_chat.fail = RuntimeError("CUDA went away")
    broken = assistant.ask(Request(text="hi"))
    assert broken.status == "error" and "failed unexpectedly" in broken.error
    assert assistant.ledger.get(broken.request_id)["status"] == "error"
    fake_chat.fail = None
    assert assistant.ask(Request(text="hi again")).status == "ok"


def test_max_new_tokens_is_capped_by_settings(assistant, fake_chat):
    assistant.ask(Request(text="hi", max_new_tokens=100_000))
    assert fake_chat.seen[-1].max_new_tokens == assistant.settings.max_new_tokens


def test_replies_cycle_in_the_fake(settings):
    fake = FakeChat(replies=("one", "two"))
    texts = [fake.run(Request(text="x")).text for _ in range(3)]
    assert texts == ["one", "two", "one"]


def test_alternatives_carry_their_typical_cost_from_the_ledger(assistant):
    first = assistant.ask(Request(text="hi", model="qwen2.5-1.5b-instruct"))
    second = assistant.ask(Request(text="hello", model="qwen2.5-1.5b-instruct"))
    outcome = assistant.ask(Request(text="hey"))  # smollm chosen; qwen is the alternative
    (alt,) = [a for a in outcome.route.alternatives if a["model"] == "qwen2.5-1.5b-instruct"]
    costs = sorted([first.cost.usd_local, second.cost.usd_local])
    assert alt["est_from_requests"] == 2
    assert alt["est_usd_local"] == pytest.approx(sum(costs) / 2)
    fresh = assistant.ask(Request(text="hi", model="qwen2.5-1.5b-instruct"))
    (never,) = [a for a in fresh.route.alternatives if a["model"] == "smollm2-135m-instruct"]
    assert never["est_from_requests"] == 1  # only "hey" ran on smollm


def test_pictures_default_to_sd_turbo_on_a_gpu_and_to_the_demo_on_a_cpu(settings, monkeypatch):
    from assistant.accounting.ledger import Ledger
    from assistant.catalog.entries import Catalog
    from assistant.flow.pool import Pool
    from assistant.flow.service import Assistant

    def picked(**changes):
        s = settings.with_(**changes)
        s.ensure_home()
        pool = Pool(lambda m: None, 1e9, {})
        built = Assistant(s, Catalog.load(), pool, Ledger(s.ledger_path))
        return built.router.route(Request(text="a red circle", task="image_generation")).model

    assert picked(device="cpu") == "demo-scenes"
    assert picked(device="cuda") == "sd-turbo"
    assert picked(device="cuda", image_model="sdxl-turbo") == "sdxl-turbo"
    # ZeroGPU lends a GPU per call and refuses CUDA touched at start: not asked.
    import torch

    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("CUDA touched"))
    assert picked(device="auto") == "sd-turbo"


def test_same_again_keeps_everything_the_words_do_not_change():
    from assistant.flow.pictures import again_options

    recipe = {
        "prompt": "a fox",
        "negative": "blurry",
        "seed": "7",
        "steps": "4",
        "guidance": "0.0",
        "size": "512x768",
        "scheduler": "Euler",
        "model": "sd-turbo",
    }
    prompt, options = again_options("same again with 8 steps", recipe)
    assert prompt == "a fox"
    assert options.given() == {
        "seed": 7.0,
        "steps": 8.0,
        "guidance": 0.0,
        "negative": "blurry",
        "width": 512.0,
        "height": 768.0,
    }
    assert again_options("again with a new seed", recipe)[1].seed == -1.0


def test_words_asking_for_a_transcript_stop_the_chain_after_speech(settings, fake_chat, tmp_path):
    """'transcribe this' + audio: the transcript only; a question about a memo is answered."""
    from assistant.flow.requests import with_transcribe_flag
    from tests.conftest import FakeASR, make_assistant

    assistant = make_assistant(settings, fake_chat, {"asr": FakeASR()})
    memo = tmp_path / "memo.wav"
    memo.write_bytes(b"RIFF0000WAVE")
    asked = Request(text="Transcribe this, please", attachments=(memo,))
    assert with_transcribe_flag(asked).transcribe_only
    assert not with_transcribe_flag(Request(text="transcribe means to write down")).transcribe_only
    only = assistant.ask(asked)
    assert only.status == "ok" and only.result.text == "Buy milk and 2 eggs."
    assert only.route.task == "asr" and only.steps == () and fake_chat.seen == []
    answered = assistant.ask(Request(text="What should I buy?", attachments=(memo,)))
    assert answered.status == "ok" and len(answered.steps) == 2
    assert "Buy milk and 2 eggs." in fake_chat.seen[-1].text
