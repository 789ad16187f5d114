"""#17 high 5: one request must not stall everyone.

- A 2,000-turn history (1.9 MB) is bounded by characters before any model
  counts it in tokens, and trimming a long chat tokenizes it a few times,
  not once per dropped turn (that held a worker for minutes).
- The prompt a text model reads is bounded by what its device reads in a
  few seconds (flow/requests.py PROMPT_CHARS): a 400-turn or a 2,000-turn
  history is answered quickly, with a note saying how many exchanges were
  left out, and a short chat sent meanwhile is not held behind its prefill.
- A question asked during a long ingest waits for one slice of the
  embedder, not for the whole document (it waited 120 s).
"""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np

from assistant.flow.requests import PROMPT_CHARS
from assistant.settings import Settings
from models.base import Message, Request, Result
from models.text import trimmed_note
from tests.conftest import FakeChat
from tests.security.served import serve


def _history(turns: int, chars: int) -> list[dict]:
    return [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * chars}
        for i in range(turns)
    ]


def test_a_huge_history_is_bounded_before_the_model_sees_it(tmp_path):
    chat = FakeChat()
    with serve(Settings(home=tmp_path / "home"), fake_chat=chat) as served:
        body = {
            "model": "auto",
            "messages": _history(2000, 900) + [{"role": "user", "content": "and now?"}],
        }
        started = time.monotonic()
        got = httpx.post(f"{served.url}/v1/chat/completions", json=body, timeout=120)
        assert got.status_code == 200, got.text[:300]
        assert time.monotonic() - started < 30
        seen = chat.seen[-1]
        limit = 8 * served.settings.max_message_chars
        assert sum(len(m.content) for m in seen.history) <= limit
        # The turns kept (with the coder pack, a follow-up also has the instruction of
        # flow/primed.py as a system message first).
        kept = [m for m in seen.history if m.role != "system"]
        assert kept[0].role == "user" and kept[-1].content.startswith("turn 1999")
        assert seen.dropped_turns > 900  # and the model's note will say how many


class _PrefillChat(FakeChat):
    """A chat model on one CPU: reading the prompt takes time in proportion to its
    characters, and while one prompt is read no other chat advances (the cores are
    busy), as llama.cpp's slots and CTranslate2's batches behave. Its note reports
    the exchanges left out, as the real adapters' does."""

    concurrent_safe = True  # many chats at once, as the real CPU backends take them
    CHARS_PER_S = 20_000  # ~5,000 tokens/s: a tiny model; old bound (160,000 chars) = 8 s

    def __init__(self):
        super().__init__(replies=("Noted.",))
        self.cores = threading.Lock()

    def stream(self, request, cancel=None):
        chars = len(request.text) + sum(len(m.content) for m in request.history)
        with self.cores:
            time.sleep(chars / self.CHARS_PER_S)
        for item in super().stream(request, cancel):
            if isinstance(item, Result):
                item = Result(
                    text=item.text, usage=item.usage, notes=trimmed_note(request.dropped_turns)
                )
            yield item


def _ask(url: str, messages: list[dict], timings: dict, name: str) -> None:
    started = time.monotonic()
    got = httpx.post(
        f"{url}/v1/chat/completions", json={"model": "auto", "messages": messages}, timeout=120
    )
    timings[name] = (time.monotonic() - started, got)


def test_a_long_history_is_answered_quickly_and_does_not_hold_a_short_chat(tmp_path):
    chat = _PrefillChat()
    with serve(Settings(home=tmp_path / "home"), fake_chat=chat) as served:
        budget = PROMPT_CHARS["cpu"]
        question = [{"role": "user", "content": "And now a short question?"}]
        long_turns = {
            "400 turns": [
                {"role": ("user", "assistant")[i % 2], "content": " ".join(["history"] * 60)}
                for i in range(400)
            ],
            "2,000 turns (1.9 MB)": _history(2000, 900),
        }
        for name, turns in long_turns.items():
            timings: dict = {}
            long = threading.Thread(
                target=_ask, args=(served.url, turns + question, timings, "long")
            )
            long.start()
            time.sleep(0.3)  # the long one is being read when the short one arrives
            _ask(served.url, [{"role": "user", "content": "Hi!"}], timings, "short")
            long.join(120)
            long_s, long_reply = timings["long"]
            short_s, short_reply = timings["short"]
            assert long_reply.status_code == 200, long_reply.text[:300]
            assert short_reply.status_code == 200, short_reply.text[:300]
            assert long_s < 5, f"{name}: answered in {long_s:.1f} s"
            assert short_s < 2, f"{name}: a short chat sent meanwhile took {short_s:.1f} s"
            seen = next(r for r in chat.seen if r.text == question[0]["content"])
            chat.seen.clear()
            read = len(seen.text) + sum(len(m.content) for m in seen.history)
            assert read <= budget and seen.history, (read, len(seen.history))
            kept = [m for m in seen.history if m.role != "system"]  # see the test above
            left_out = (len(turns) - len(kept)) // 2
            notes = long_reply.json()["assistant"]["notes"]
            assert notes and f"The {left_out} oldest exchanges" in notes[0], notes


class _CountingTokenizer:
    """A tokenizer that counts its work: one token per 4 characters, like text."""

    def __init__(self):
        self.calls = 0

    def apply_chat_template(self, messages, add_generation_prompt, return_dict, return_tensors):
        self.calls += 1
        return {"input_ids": [0] * (sum(len(m["content"]) for m in messages) // 4)}


def test_trimming_a_long_chat_tokenizes_it_a_few_times_not_once_per_turn():
    from models.text import chat_prompt

    history = tuple(Message(m["role"], m["content"]) for m in _history(400, 400))
    tokenizer = _CountingTokenizer()
    ids, dropped = chat_prompt(
        tokenizer, Request(text="and now?", history=history, max_new_tokens=256), 2048
    )
    assert len(ids) <= 2048 - 256
    assert 180 <= dropped < 200  # ~18 of 200 exchanges fit; most of the fit is kept
    assert tokenizer.calls <= 6, tokenizer.calls
    already = chat_prompt(_CountingTokenizer(), Request(text="hi", dropped_turns=7), 2048)
    assert already[1] == 7  # exchanges the app left out are counted in the note


class _SlowEncoder:
    """sentence-transformers' encode() at a steady 20 ms per text."""

    def __init__(self):
        self.tokenizer = lambda texts: {"input_ids": [[0] * len(t.split()) for t in texts]}

    def get_embedding_dimension(self) -> int:
        return 8

    def encode(self, texts, **kwargs):
        time.sleep(0.02 * len(texts))
        out = np.ones((len(texts), 8), dtype="float32")
        for i, t in enumerate(texts):
            out[i, hash(t) % 8] += 3.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_a_question_is_not_held_behind_a_long_ingest(tmp_path):
    from models.embed import SentenceEmbedder

    embedder = SentenceEmbedder("unused", model=_SlowEncoder())
    with serve(Settings(home=tmp_path / "home"), fakes={"embed": embedder}) as served:
        small = tmp_path / "small.txt"
        small.write_text("The unicorn code is 4417.")
        assert served.assistant.ingest(small).status == "ok"  # now questions consult documents
        big = tmp_path / "big.txt"  # ~250 chunks: 5 s of embedding
        big.write_text(
            "\n".join(f"Line {i}: " + "words about the harbour " * 40 for i in range(250))
        )
        ingest = threading.Thread(target=served.assistant.ingest, args=(big,))
        ingest.start()
        time.sleep(0.5)
        started = time.monotonic()
        got = httpx.post(
            f"{served.url}/v1/chat/completions",
            timeout=60,
            json={"model": "auto", "messages": [{"role": "user", "content": "Hello there"}]},
        )
        waited = time.monotonic() - started
        still_ingesting = ingest.is_alive()
        ingest.join(60)
        assert got.status_code == 200, got.text[:300]
        assert still_ingesting, "the ingest should still have been running"
        assert waited < 1.5, f"the question waited {waited:.1f} s behind the ingest"
