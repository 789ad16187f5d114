"""A model whose library is missing says which package to install, before any slow work.

The import is made to fail the way a missing package fails (``sys.modules[name] =
None`` makes ``import name`` raise ModuleNotFoundError), whatever this machine has.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from models.base import ModelUnavailable


def _never() -> Path:
    raise AssertionError("a pack was prepared though its library is missing")


def _faster_whisper():
    from models.asr import FasterWhisper

    return FasterWhisper(source="base", prepare=_never)


def _openai_whisper():
    from models.asr import OpenAIWhisper

    return OpenAIWhisper(source="base", prepare=_never)


def _transformers_chat():
    from models.text import TransformersChat

    return TransformersChat(source="some/model", prepare=_never)


def _ct2_chat():
    from models.text_ct2 import CT2Chat

    return CT2Chat(source="some/model", prepare=_never)


def _embedder():
    from models.embed import SentenceEmbedder

    return SentenceEmbedder(_never)


def _reranker():
    from models.rerank import CrossEncoderReranker

    return CrossEncoderReranker("some/model")


def _vlm():
    from models.vision_vlm import HubVision

    return HubVision("some/model")


def _pictures():
    from models.image_diffusers import DiffusersImages

    return DiffusersImages("some/model", "some-model", Path("unused"))


@pytest.mark.parametrize(
    ("build", "module", "says"),
    [
        (
            _faster_whisper,
            "faster_whisper",
            "pip install -r requirements.txt (it pins faster-whisper)",
        ),
        (_openai_whisper, "whisper", "pip install --no-deps -r requirements-packs.txt"),
        (
            _transformers_chat,
            "transformers",
            "pip install -r requirements.txt (it pins transformers)",
        ),
        (_transformers_chat, "torch", "(it pins torch)"),
        (_ct2_chat, "ctranslate2", "faster-whisper brings it"),
        (_embedder, "sentence_transformers", "(it pins sentence-transformers)"),
        (_reranker, "sentence_transformers", "(it pins sentence-transformers)"),
        (_vlm, "transformers", "(it pins transformers)"),
        (_pictures, "diffusers", "(it pins diffusers)"),
    ],
)
def test_a_missing_library_names_the_package_to_install(monkeypatch, build, module, says):
    adapter = build()
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModelUnavailable, match="is not installed") as missing:
        adapter.load()
    assert says in str(missing.value)
