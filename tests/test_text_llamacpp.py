"""The llama.cpp chat adapter with a fake ``Llama``: stops, limits, sampling, messages.

The real runtime is compiled on request (``make llamacpp``); its real-tier
test is in test_real.py and skips without it. Everything the adapter
decides itself is checked here, where CI runs it.
"""

from __future__ import annotations

import sys
import threading

import pytest

from assistant.catalog import Catalog
from assistant.families import build_adapter
from assistant.settings import Settings
from models.base import ModelUnavailable, Request, Result
from models.text_llamacpp import LlamaCppChat
from tests.test_text_batching import CharTokenizer

EOS = 0


class FakeLlama:
    """Answers the last user line reversed, then EOS; records how it was asked."""

    def __init__(self, endless: bool = False):
        self.endless = endless
        self.calls: list[dict] = []
        self.closed = False

    def token_eos(self) -> int:
        return EOS

    def generate(self, tokens, **sampling):
        self.calls.append({"tokens": list(tokens), **sampling})
        text = "".join(chr(t) for t in tokens)
        answer = [line for line in text.splitlines() if line.startswith("user: ")][-1][6:][::-1]
        while True:
            yield from (ord(c) for c in answer)
            if not self.endless:
                yield EOS

    def close(self) -> None:
        self.closed = True


def adapter(llm: FakeLlama | None = None) -> LlamaCppChat:
    tokenizer = CharTokenizer()
    tokenizer.eos_token_id = EOS
    return LlamaCppChat(files=lambda: ("unused", "unused"), llm=llm or FakeLlama(),
                        tokenizer=tokenizer, context_window=400)  # fmt: skip


def collect(chat: LlamaCppChat, request: Request, cancel=None) -> tuple[list[str], Result]:
    items = list(chat.stream(request, cancel))
    return [i for i in items if isinstance(i, str)], items[-1]


def test_streams_the_reply_and_stops_at_end_of_sequence():
    pieces, result = collect(adapter(), Request(text="hello there"))
    assert "".join(pieces) == "ereht olleh" == result.text
    assert result.usage.units_out == len("ereht olleh")
    assert result.usage.units_in == len("user: hello there\nassistant:")


def test_max_new_tokens_cuts_an_endless_reply():
    _, result = collect(adapter(FakeLlama(endless=True)), Request(text="abc", max_new_tokens=7))
    assert result.usage.units_out == 7 and result.text == "cbacbac"


def test_stop_ends_generation_at_the_next_token():
    cancel = threading.Event()
    chat = adapter(FakeLlama(endless=True))
    seen = 0
    for item in chat.stream(Request(text="abcdef", max_new_tokens=300), cancel):
        if isinstance(item, Result):
            result = item
        else:
            seen += 1
            if seen == 3:
                cancel.set()
    assert result.usage.units_out == 3 and result.text == "fed"


def test_sampling_matches_the_other_backends():
    llm = FakeLlama()
    collect(adapter(llm), Request(text="hi", temperature=0.0))
    collect(adapter(llm), Request(text="hi", temperature=0.7))
    greedy, sampled = llm.calls
    # temp 0 is llama.cpp's greedy sampler; otherwise plain temperature
    # sampling with no top-k / top-p / min-p cut, as CTranslate2 does it.
    assert greedy["temp"] == 0.0 and sampled["temp"] == 0.7
    assert sampled["top_k"] == 0 and sampled["top_p"] == 1.0 and sampled["min_p"] == 0.0
    assert greedy["repeat_penalty"] == 1.1


def test_a_long_chat_is_trimmed_and_says_so():
    from models.base import Message

    history = tuple(Message(role, "x" * 60) for _ in range(6) for role in ("user", "assistant"))
    _, result = collect(adapter(), Request(text="q", history=history, max_new_tokens=50))
    assert result.notes and "oldest" in result.notes[0]


def test_unload_frees_the_model_and_a_later_request_says_so():
    llm = FakeLlama()
    chat = adapter(llm)
    chat.unload()
    assert llm.closed
    with pytest.raises(ModelUnavailable, match="not loaded"):
        collect(chat, Request(text="hi"))


def test_without_llama_cpp_the_message_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails
    chat = LlamaCppChat(files=lambda: ("unused", "unused"))
    with pytest.raises(ModelUnavailable, match="make llamacpp"):
        chat.load()


def test_catalog_offers_it_only_with_the_runtime(monkeypatch, tmp_path):
    entry = Catalog.load().get("smollm2-135m-instruct-llamacpp")
    monkeypatch.setattr("assistant.catalog.module_dir", lambda name: None)
    usable, why = entry.availability(tmp_path)
    assert not usable and "make llamacpp" in why
    assert Catalog.load().default_for("text").id == "smollm2-135m-instruct"


def test_an_entry_without_pack_or_gguf_is_refused_clearly():
    from assistant.catalog import Entry

    coder = Catalog.load().get("qwen2.5-coder-0.5b-instruct")
    bare = Entry(**{**coder.__dict__, "id": "mine", "backend": "llama.cpp", "source": {}})
    with pytest.raises(ModelUnavailable, match="source.gguf"):
        build_adapter(bare, Settings.from_env()).files()


def test_a_local_gguf_entry_is_offered_only_when_its_file_exists(tmp_path):
    from assistant.catalog import Entry

    base = Catalog.load().get("smollm2-135m-instruct-llamacpp")
    model = tmp_path / "mine.gguf"
    source = {"folder": str(tmp_path), "gguf": str(model)}
    entry = Entry(**{**base.__dict__, "id": "mine", "source": source})
    usable, why = entry.availability(tmp_path)
    assert not usable and str(model) in why
    model.write_bytes(b"GGUF")
    assert entry.availability(tmp_path) == (True, "local GGUF file")
    assert build_adapter(entry, Settings.from_env()).files() == (tmp_path, model)
