"""#17 high 5: one request must not stall everyone.

- A 2,000-turn history (1.9 MB) is bounded by characters before any model
  counts it in tokens, and trimming a long chat tokenizes it a few times,
  not once per dropped turn (that held a worker for minutes).
- A question asked during a long ingest waits for one slice of the
  embedder, not for the whole document (it waited 120 s).
"""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np

from assistant.settings import Settings
from models.base import Message, Request
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
        assert seen.history[0].role == "user" and seen.history[-1].content.startswith("turn 1999")
        assert seen.dropped_turns > 900  # and the model's note will say how many


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
