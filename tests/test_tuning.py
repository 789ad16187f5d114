"""Fine-tuning: data checks, refusals, and a whole run on a tiny seeded model.

The tiny model (2 layers, 32 wide) has SmolLM2's tokenizer and chat
template from the prepared pack, so rendering, masking, merging and
registering are the real code; only the model is small enough for the
fast tier. Evaluation goes through the fake chat model of conftest.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from models.base import BadInput, Request
from tests.realenv import tiny_llama
from training import data


def _lines(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _chat(i: int) -> dict:
    return {
        "messages": [
            {"role": "user", "content": f"Ticket for: my phone {i} broke"},
            {"role": "assistant", "content": json.dumps({"intent": "repair", "n": i})},
        ]
    }


@pytest.mark.parametrize(
    "bad, message",
    [
        ("{oops", "line 3: not JSON"),
        ('{"prompt": "x"}', 'line 3: expected {"messages"'),
        ('{"messages": [{"role": "robot", "content": "x"}]}', "line 3: message 1 needs a role"),
        ('{"messages": [{"role": "user", "content": " "}]}', "line 3: message 1 \\(user\\) has no"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "line 3: no assistant message"),
        (
            '{"messages": [{"role": "assistant", "content": "a"},'
            ' {"role": "user", "content": "b"}]}',
            "line 3: the last message should be the assistant's",
        ),
    ],
)
def test_malformed_training_lines_are_refused_by_number(tmp_path, bad, message):
    path = _lines(tmp_path / "d.jsonl", [_chat(1), _chat(2), bad] + [_chat(i) for i in range(9)])
    with pytest.raises(BadInput, match=message):
        data.load(path)


def test_too_few_examples_and_csv_prompt_completion(tmp_path):
    with pytest.raises(BadInput, match="3 example\\(s\\); at least 8"):
        data.load(_lines(tmp_path / "d.jsonl", [_chat(i) for i in range(3)]))
    csv = tmp_path / "d.csv"
    csv.write_text("prompt,completion\n" + "".join(f"q{i},a{i}\n" for i in range(10)))
    chats, sha = data.load(csv)
    assert chats[0].messages == (("user", "q0"), ("assistant", "a0")) and len(sha) == 64
    (tmp_path / "bad.csv").write_text("question,answer\nq,a\n")
    with pytest.raises(BadInput, match="prompt and completion"):
        data.load(tmp_path / "bad.csv")
    train = data.split(chats, sha, csv)
    assert len(train.validation) == 2 and len(train.train) == 8
    assert data.split(chats, sha, csv) == train  # seeded: the same examples held back


def test_names_and_bases_are_checked_before_anything_trains(assistant):
    from assistant.tuning import check

    with pytest.raises(BadInput, match="already a model in the catalog"):
        check(assistant, "smollm2-135m-instruct", "whisper-base")
    with pytest.raises(BadInput, match="not a usable model name"):
        check(assistant, "smollm2-135m-instruct", "../evil")
    with pytest.raises(
        BadInput,
        match="gpt-4o-mini' cannot be fine-tuned here \\(a remote "
        "endpoint\\).*smollm2-135m-instruct",
    ):
        check(assistant, "gpt-4o-mini", "mine")
    with pytest.raises(BadInput, match="a hub model"):
        check(assistant, "qwen2.5-1.5b-instruct", "mine")
    with pytest.raises(BadInput, match="a asr model"):
        check(assistant, "whisper-base", "mine")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_only_the_assistant_turn_carries_a_loss(tiny_base):
    from transformers import AutoTokenizer

    from training.lora import encode

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    chat = data.Chat(1, (("system", "Be brief."), ("user", "Say hi"), ("assistant", "Hello!")))
    ids, labels, cut = encode(tokenizer, chat, 512)
    taught = tokenizer.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
    assert taught.startswith("Hello!") and "Say hi" not in taught and not cut
    _, short, cut = encode(tokenizer, chat, 5)
    assert len(short) == 5 and cut


def _tiny_assistant(settings, tiny_base):
    from assistant.catalog.entries import Entry
    from tests.conftest import FakeChat, make_assistant

    assistant = make_assistant(settings, FakeChat(['{"intent": "repair", "n": 1}']))
    base = Entry(
        "tiny-base",
        "tiny",
        "text",
        ("text",),
        "transformers",
        (),
        {"folder": str(tiny_base)},
        "Apache-2.0",
        0.1,
        1,
        10,
        True,
        512,
    )
    assistant.catalog.entries[base.id] = base
    return assistant


def test_a_whole_run_trains_evaluates_registers_and_accounts(settings, tiny_base, tmp_path):
    from assistant.catalog.entries import Catalog
    from assistant.tuning import tune

    assistant = _tiny_assistant(settings, tiny_base)
    path = _lines(tmp_path / "tickets.jsonl", [_chat(i) for i in range(12)])
    events = []
    card = tune(assistant, path, "tiny-base", "tiny-tickets", epochs=2, progress=events.append)
    # 10 examples train beside the base's own answers to 10 general prompts:
    # 20 chats, batches of 8, two epochs.
    lines = [e for e in events if isinstance(e, str)]
    steps = [e for e in events if not isinstance(e, str)]
    assert lines[-1] == "Keeping general answers: 10/10"
    assert card["data"]["general_replayed"] == 10 and card["data"]["train"] == 10
    assert [s.step for s in steps] == [1, 2, 3, 4, 5, 6] and steps[-1].eta_s == 0
    t = card["training"]
    assert len(t["losses"]) == 6 and t["tokens"] > 0 and t["seconds_per_step"] > 0
    assert card["data"]["validation"] == 2 and card["data"]["sha256"] == data.load(path)[1]
    assert card["eval"]["metric"] == "json"
    assert [m["model"] for m in card["eval"]["models"]] == ["tiny-base", "tiny-tickets"]
    assert card["cost"]["usd_cloud"] == pytest.approx(t["tokens"] * 3.0 / 1e6)
    assert (settings.home / "tuned" / "tiny-tickets" / "card.json").is_file()
    # Registered: in the running catalog and in ASSISTANT_HOME/catalog.json for the next start.
    assert Catalog.load(extra=settings.catalog_file).get("tiny-tickets").source["folder"]
    outcome = assistant.ask(Request(text="Ticket for: my tablet broke", model="tiny-tickets"))
    assert outcome.status == "ok" and outcome.route.model == "tiny-tickets"
    (row,) = [r for r in assistant.ledger.rows(limit=50) if r["task"] == "fine_tune"]
    assert row["status"] == "ok" and row["units_in"] == t["tokens"] and row["usd_cloud"] > 0


def test_a_stopped_run_registers_nothing_and_resumes_from_its_checkpoint(
    settings, tiny_base, tmp_path
):
    from assistant.tuning import tune
    from training.lora import Stopped

    assistant = _tiny_assistant(settings, tiny_base)
    path = _lines(tmp_path / "tickets.jsonl", [_chat(i) for i in range(12)])
    stop = threading.Event()

    def stop_in_epoch_two(step):
        if step.step == 2:  # 10 training examples, batches of 8: epoch 1 ends at step 2
            stop.set()

    with pytest.raises(Stopped, match="1 epoch\\(s\\) kept"):
        tune(
            assistant,
            path,
            "tiny-base",
            "tiny-stop",
            epochs=3,
            progress=stop_in_epoch_two,
            stop=stop,
            keep_general=False,  # the checkpoint is the point here, not the replay
        )
    assert "tiny-stop" not in assistant.catalog.entries
    assert not settings.catalog_file.exists()
    (row,) = [r for r in assistant.ledger.rows(limit=50) if r["task"] == "fine_tune"]
    assert row["status"] == "error" and "Stopped" in row["error"]
    steps = []
    card = tune(
        assistant,
        path,
        "tiny-base",
        "tiny-stop",
        epochs=3,
        progress=steps.append,
        keep_general=False,
    )
    assert [s.step for s in steps] == [3, 4, 5, 6]  # epoch 1 came from the checkpoint
    assert len(card["training"]["losses"]) == 6


def test_stop_while_keeping_general_answers_trains_nothing(settings, tiny_base, tmp_path):
    from assistant.tuning import tune
    from training.lora import Stopped

    assistant = _tiny_assistant(settings, tiny_base)
    path = _lines(tmp_path / "tickets.jsonl", [_chat(i) for i in range(12)])
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped, match="before training"):
        tune(assistant, path, "tiny-base", "tiny-early", progress=lambda _: None, stop=stop)
    assert "tiny-early" not in assistant.catalog.entries
    assert not (settings.home / "tuned" / "tiny-early" / "card.json").exists()
    assert [r for r in assistant.ledger.rows(limit=50) if r["task"] == "fine_tune"] == []
