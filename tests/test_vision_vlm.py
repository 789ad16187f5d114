"""The hub vision-language path exercised with a local folder.

No hub here, so a tiny BLIP with untrained weights is saved to a folder and
loaded through the same ``from_pretrained`` code a hub id takes. Its words
are random: these tests check the plumbing, never what it says.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from models.base import BadInput, ModelUnavailable, Request, Result
from tests.conftest import seeded

WORDS = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "a",
    "cat",
    "dog",
    "red",
    "the",
    "is",
    "what",
    "in",
    "this",
    "picture",
    "?",
    "of",
    "photo",
]


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory) -> Path:
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    with seeded():
        root = tmp_path_factory.mktemp("tiny-blip")
        (root / "vocab.txt").write_text("\n".join(WORDS) + "\n")
        tokenizer = BertTokenizer(str(root / "vocab.txt"), model_max_length=64)
        small = {
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
        }
        config = BlipConfig(
            text_config={
                **small,
                "vocab_size": len(WORDS),
                "bos_token_id": 2,
                "sep_token_id": 3,
                "eos_token_id": 3,
                "pad_token_id": 0,
                "max_position_embeddings": 64,
            },
            vision_config={**small, "image_size": 32, "patch_size": 8},
            projection_dim=32,
        )
        folder = root / "model"
        BlipForConditionalGeneration(config).save_pretrained(folder)
        processor = BlipProcessor(BlipImageProcessor(size={"height": 32, "width": 32}), tokenizer)
        processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def vlm(tiny_blip):
    from models.vision_vlm import HubVision

    adapter = HubVision(str(tiny_blip), "cpu")
    adapter.load()
    return adapter


@pytest.fixture()
def photo(tmp_path) -> Path:
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(path)
    return path


def test_a_local_vision_language_folder_answers_about_a_picture(vlm, photo):
    items = list(vlm.stream(Request(text="a photo of", attachments=(photo,), max_new_tokens=6)))
    result = items[-1]
    assert isinstance(result, Result) and result.usage.units_in == 1
    assert 0 < result.usage.units_out <= 6
    streamed = "".join(i for i in items if isinstance(i, str))
    assert streamed.strip() == result.text  # what streamed is what is kept


def test_no_picture_or_a_broken_one_is_a_clear_message(vlm, tmp_path):
    with pytest.raises(BadInput, match="Attach a picture"):
        list(vlm.stream(Request(text="what is this?")))
    fake = tmp_path / "sound.png"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(BadInput, match="not an image"):
        list(vlm.stream(Request(text="what is this?", attachments=(fake,))))


def test_stop_ends_generation_early(vlm, photo):
    cancel = threading.Event()
    cancel.set()
    result = list(vlm.stream(Request(attachments=(photo,), max_new_tokens=20), cancel))[-1]
    assert result.usage.units_out <= 2


def test_a_hub_vision_model_without_the_hub_fails_clearly(monkeypatch):
    from models.vision_vlm import HubVision

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match="huggingface.co"):
        HubVision("HuggingFaceTB/SmolVLM-not-cached", "cpu").load()


def test_its_answer_is_final_not_sent_on_to_the_text_model(assistant, fake_chat, tiny_blip, photo):
    from dataclasses import replace

    from assistant.catalog.backends import build_adapter

    entry = replace(assistant.catalog.get("blip-captioning-base"), source={"hub": str(tiny_blip)})
    assistant.catalog.entries[entry.id] = entry
    assistant.pool.factory = lambda model_id: (
        build_adapter(entry, assistant.settings) if model_id == entry.id else fake_chat
    )
    outcome = assistant.ask(
        Request(
            text="what is in this picture?",
            attachments=(photo,),
            model="blip-captioning-base",
            max_new_tokens=4,
        )
    )
    assert outcome.status == "ok", outcome.error
    assert outcome.route.model == "blip-captioning-base" and not fake_chat.seen
