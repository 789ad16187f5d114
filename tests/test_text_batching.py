"""The CTranslate2 chat adapter's batching, with a fake generator: who gets which tokens."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from assistant.flow.pool import Pool
from models.base import Adapter, BadInput, Message, Request, Result
from models.text import chat_prompt
from models.text_ct2 import CT2Chat


class CharTokenizer:
    """One token per character; the chat template is 'role: content' lines."""

    name_or_path = "fake"

    def apply_chat_template(
        self, messages, add_generation_prompt=True, return_dict=True, return_tensors=None
    ):
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return {"input_ids": [ord(c) for c in text]}

    def convert_ids_to_tokens(self, ids):
        return [chr(i) for i in ids]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


@dataclass
class Step:
    step: int
    batch_id: int
    token_id: int
    is_last: bool = False


def reply_to(prompt_tokens: list[str]) -> str:
    """The fake model's answer: the last user line, reversed."""
    text = "".join(prompt_tokens)
    last_user = [line for line in text.splitlines() if line.startswith("user: ")][-1]
    return last_user[len("user: ") :][::-1]


class FakeGenerator:
    """Decodes a batch step by step, interleaving its members like a real batch."""

    def __init__(self, step_s: float = 0.001, fail: Exception | None = None):
        self.batches: list[int] = []
        self.step_s = step_s
        self.fail = fail
        self._lock = threading.Lock()

    def generate_batch(self, prompts, max_length, callback, **options):
        with self._lock:
            self.batches.append(len(prompts))
        if self.fail:
            raise self.fail
        answers = [reply_to(p) for p in prompts]
        done = [False] * len(prompts)
        for step in range(max_length):
            for b, answer in enumerate(answers):
                if done[b]:
                    continue
                if step >= len(answer):
                    done[b] = True
                    continue
                done[b] = bool(callback(Step(step, b, ord(answer[step]))))
            if all(done):
                break
            time.sleep(self.step_s)


def adapter(**kw) -> CT2Chat:
    return CT2Chat(
        "unused",
        generator=kw.pop("generator", FakeGenerator()),
        tokenizer=CharTokenizer(),
        workers=2,
        **kw,
    )


def test_eight_concurrent_chats_are_batched_and_each_gets_its_own_reply():
    generator = FakeGenerator(step_s=0.002)
    chat = adapter(generator=generator)
    prompts = [f"question number {i} from user {i}" for i in range(8)]
    replies: list[str | None] = [None] * 8
    barrier = threading.Barrier(8)

    def ask(i):
        barrier.wait()
        replies[i] = chat.run(Request(text=prompts[i], max_new_tokens=64)).text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert replies == [p[::-1] for p in prompts]
    assert sum(generator.batches) == 8
    assert max(generator.batches) > 1, generator.batches  # batched, not one at a time


def test_a_burst_spread_over_milliseconds_is_split_evenly_and_nobody_waits_a_batch(
    monkeypatch,
):
    """`bench text`: eight chats reached the batcher over 3-12 ms; a fixed 5 ms
    window split them unevenly and the last waited 3.5 s for a whole batch."""
    import models.text_ct2 as ct2

    # Scaled up so a loaded test machine's scheduling cannot split the burst.
    monkeypatch.setattr(ct2, "GATHER_GAP_S", 0.05)
    monkeypatch.setattr(ct2, "GATHER_MAX_S", 0.5)
    generator = FakeGenerator(step_s=0.03)  # a 10-character reply takes 0.3 s
    chat = adapter(generator=generator)
    results: list[Result | None] = [None] * 8
    barrier = threading.Barrier(8)

    def ask(i):
        barrier.wait()
        time.sleep(i * 0.01)  # arrivals 10 ms apart, 70 ms in all
        results[i] = chat.run(Request(text=f"question {i}", max_new_tokens=64))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.text for r in results] == [f"question {i}"[::-1] for i in range(8)]
    assert sorted(generator.batches) == [4, 4], generator.batches
    # Waiting for the burst to end, never for another batch's replies (0.3 s).
    assert max(r.queue_s for r in results) < 0.25, [r.queue_s for r in results]


def test_a_long_prompt_is_read_in_its_own_batch_and_short_chats_go_on_beside_it():
    """#17: a short chat batched with a long history waited for all of its prefill."""

    class ReadingGenerator(FakeGenerator):
        def generate_batch(self, prompts, max_length, callback, **options):
            time.sleep(max(len(p) for p in prompts) / 10_000)  # the padded prefill
            super().generate_batch(prompts, max_length, callback, **options)

    chat = adapter(generator=ReadingGenerator(), context_window=100_000)
    history = tuple(Message(("user", "assistant")[i % 2], "x" * 500) for i in range(80))
    timings: dict[str, float] = {}

    def ask(name, request):
        started = time.monotonic()
        chat.run(request)
        timings[name] = time.monotonic() - started

    long = threading.Thread(target=ask, args=("long", Request(text="and?", history=history)))
    shorts = [
        threading.Thread(target=ask, args=(f"short {i}", Request(text=f"hi {i}"))) for i in range(3)
    ]
    long.start()
    for t in shorts:
        t.start()
    for t in [long, *shorts]:
        t.join()
    assert timings["long"] > 3  # 40,000 characters at 10,000 a second
    assert max(v for k, v in timings.items() if k != "long") < 1, timings


def test_stopping_one_request_leaves_the_rest_of_its_batch_running():
    chat = adapter(generator=FakeGenerator(step_s=0.005))
    stop = threading.Event()
    out = {}

    def long(name, cancel=None):
        pieces = []
        for item in chat.stream(Request(text="x" * 60, max_new_tokens=100), cancel):
            if isinstance(item, Result):
                out[name] = item
            else:
                pieces.append(item)
                if name == "stopped" and len(pieces) == 3:
                    stop.set()

    a = threading.Thread(target=long, args=("stopped", stop))
    b = threading.Thread(target=long, args=("kept",))
    a.start(), b.start()
    a.join(), b.join()
    assert out["kept"].text == "x" * 60
    assert 3 <= out["stopped"].usage.units_out < 10


def test_a_failing_batch_fails_each_of_its_requests_and_the_next_one_works():
    generator = FakeGenerator(fail=RuntimeError("device lost"))
    chat = adapter(generator=generator)
    with pytest.raises(RuntimeError, match="device lost"):
        chat.run(Request(text="hello"))
    generator.fail = None
    assert chat.run(Request(text="hello")).text == "olleh"


def test_max_new_tokens_is_per_request_inside_a_batch():
    chat = adapter()
    result = chat.run(Request(text="abcdefghij", max_new_tokens=4))
    assert result.text == "jihg" and result.usage.units_out == 4


def test_unloading_fails_waiting_requests_clearly():
    chat = adapter(generator=FakeGenerator(step_s=0.05))
    chat.unload()
    with pytest.raises(Exception, match="unloaded|load"):
        chat.run(Request(text="hi"))


def test_old_turns_are_trimmed_to_fit_and_the_reply_says_so():
    history = []
    for i in range(20):
        history += [Message("user", f"turn {i} " + "y" * 40), Message("assistant", "ok " * 10)]
    system = Message("system", "Be brief.")
    request = Request(text="last question", history=(system, *history), max_new_tokens=50)
    ids, dropped = chat_prompt(CharTokenizer(), request, context_window=600)
    text = "".join(chr(i) for i in ids)
    assert len(ids) <= 550 and dropped > 0
    assert text.startswith("system: Be brief.") and "last question" in text
    assert "turn 0 " not in text and "turn 19 " in text
    result = adapter(context_window=600).run(request)
    assert result.notes and "left out" in result.notes[0]


def test_one_message_over_the_context_window_is_a_clear_error():
    with pytest.raises(BadInput, match="context window of 100 tokens"):
        chat_prompt(CharTokenizer(), Request(text="z" * 500, max_new_tokens=10), 100)


class Shared(Adapter):
    family, tasks, concurrent_safe = "text", ("text",), True

    def load(self):
        pass


def test_the_pool_lets_concurrent_safe_models_serve_two_requests_at_once():
    pool = Pool(lambda model_id: Shared(), memory_budget_mb=100, sizes={"a": 80, "b": 80})
    with pool.lease("a") as first:
        # An exclusive lock would deadlock here.
        with pool.lease("a") as second:
            assert first.adapter is second.adapter
        # "a" is still in use, so loading "b" over the budget must not evict it.
        with pool.lease("b"):
            pass
        assert {m["model"] for m in pool.resident()} == {"a", "b"}
