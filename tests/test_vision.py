"""Pictures: every bad file refused fast and clearly, and the picture → text chain (fakes)."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import pytest
from PIL import Image

from assistant.knowledge.picture_text import PICTURE_SYSTEM
from models.base import BadInput, Request
from models.vision import ClassifierOCR, describe, load_image


def _png(path: Path, size=(64, 32), color="red") -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def test_a_decompression_bomb_is_refused_from_its_header(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(bomb)  # 81 MP of zeros: ~10 KB on disk
    assert bomb.stat().st_size < 100_000
    started = time.perf_counter()
    with pytest.raises(BadInput, match="9000×9000 pixels; the limit is 40 megapixels"):
        load_image(bomb)
    assert time.perf_counter() - started < 0.5  # no pixel was decoded


def test_a_truncated_file_and_a_wav_named_png_are_named(tmp_path):
    whole = _png(tmp_path / "whole.png", (300, 300)).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BadInput, match="cut.png is damaged or truncated"):
        load_image(cut)
    fake = tmp_path / "photo.png"
    with wave.open(str(fake), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    with pytest.raises(BadInput, match="photo.png is not an image .* whatever its name says"):
        load_image(fake)


def test_an_exif_rotated_photo_is_read_upright(tmp_path):
    photo = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.new("RGB", (40, 20), "blue").save(photo, exif=exif)
    assert load_image(photo).size == (20, 40)


def test_a_200_frame_gif_is_read_from_its_first_frame_quickly(tmp_path):
    gif = tmp_path / "loop.gif"
    frames = [Image.new("RGB", (120, 120), (i, 3 * i % 256, 0)) for i in range(200)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=20)
    started = time.perf_counter()
    image = load_image(gif)
    assert time.perf_counter() - started < 1.0
    assert image.info["frames"] == 200 and image.mode == "RGB"
    assert "An animation of 200 frames" in describe("loop.gif", [("x", 0.5)], [], 200)


class FakeClassifier:
    """Logits that favour class 281 (tabby) whatever the picture, so the chain is testable."""

    def __call__(self, batch):
        import torch

        assert tuple(batch.shape) == (1, 3, 224, 224) and batch.min() >= -1 and batch.max() <= 1
        logits = torch.zeros(1, 1000)
        logits[0, 281] = 5.0
        return logits


def _fake_vision(lines=("TOTAL 12.00",)):
    classes = [f"class{i}" for i in range(1000)]
    classes[281] = "tabby"
    return ClassifierOCR(
        classifier=FakeClassifier(),
        classes=classes,
        ocr=lambda img: ([[None, line, 0.9] for line in lines], None),
    )


def _use_fake_vision(assistant, monkeypatch) -> None:
    vision, factory = _fake_vision(), assistant.pool.factory
    pick = lambda m: vision if m.startswith("efficientnet") else factory(m)  # noqa: E731
    monkeypatch.setattr(assistant.pool, "factory", pick)


def test_an_amount_asked_for_is_read_from_the_ocr_lines_by_rule(
    assistant, fake_chat, tmp_path, monkeypatch
):
    _use_fake_vision(assistant, monkeypatch)
    photo = _png(tmp_path / "cat.png", (500, 300))
    pieces = list(assistant.handle(Request(text="What is the total?", attachments=(photo,))))
    outcome = pieces[-1]
    assert outcome.status == "ok", outcome.error
    # The answer first, in a paragraph of its own; then what the readers saw (a
    # walk found it glued to the last OCR line, under a list of 5% guesses).
    shown = "".join(p for p in pieces if isinstance(p, str))
    assert shown == outcome.result.text
    answer, findings = shown.split("\n\n", 1)
    assert answer == "The total is **12.00** (read from the line “TOTAL 12.00”)."
    assert findings.startswith("cat.png: looks like tabby (") and "- TOTAL 12.00" in findings
    assert fake_chat.seen == []  # no model can get the amount wrong
    assert "no text model ran" in outcome.result.notes[-1]


def test_an_open_question_goes_to_the_text_model_as_plain_lists(
    assistant, fake_chat, tmp_path, monkeypatch
):
    _use_fake_vision(assistant, monkeypatch)
    fake_chat.replies = ["It is a tabby with a total of 12.00 on it."]
    photo = _png(tmp_path / "cat.png", (500, 300))
    outcome = assistant.ask(Request(text="Is this a bill for a pet?", attachments=(photo,)))
    assert outcome.status == "ok", outcome.error
    assert [s.route.task for s in outcome.steps] == ["vision", "text"]
    seen = fake_chat.seen[-1]
    assert seen.history[0].content == PICTURE_SYSTEM
    assert "- TOTAL 12.00" in seen.text and "tabby (" in seen.text
    assert seen.text.endswith("Is this a bill for a pet?")
    assert "<<<" not in seen.text and "Question:" not in seen.text
    said, findings = outcome.result.text.split("\n\n", 1)
    assert said == "It is a tabby with a total of 12.00 on it."
    assert findings.startswith("cat.png: looks like tabby (")
    vision_row = assistant.ledger.get(outcome.steps[0].request_id)
    text_row = assistant.ledger.get(outcome.steps[1].request_id)
    assert vision_row["units_in"] == 1 and vision_row["unit"] == "images"
    assert text_row["parent_id"] == outcome.steps[0].request_id


def test_a_reply_the_readers_do_not_support_is_replaced_by_their_findings(
    assistant, fake_chat, tmp_path, monkeypatch
):
    _use_fake_vision(assistant, monkeypatch)
    fake_chat.replies = ["The picture is a leopard costing 99.00."]
    photo = _png(tmp_path / "cat.png", (500, 300))
    outcome = assistant.ask(Request(text="Is this a bill for a pet?", attachments=(photo,)))
    assert "leopard" not in outcome.result.text and "99.00" not in outcome.result.text
    assert outcome.result.text.startswith("The image classifier's best guess is **tabby**")
    assert "- TOTAL 12.00" in outcome.result.text
    assert "looks like" not in outcome.result.text  # the findings once, not twice


def test_bad_pictures_through_the_assistant_lose_nothing(
    assistant, fake_chat, tmp_path, monkeypatch
):
    _use_fake_vision(assistant, monkeypatch)
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    outcome = assistant.ask(Request(text="what is this?", attachments=(svg,)))
    assert outcome.status == "error" and "Unsupported file type: logo.svg" in outcome.error
    fake = tmp_path / "song.png"
    fake.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100))
    outcome = assistant.ask(Request(text="what is this?", attachments=(fake,)))
    assert outcome.status == "error" and "song.png is not an image" in outcome.error
    assert fake_chat.seen == []  # the text model was never asked about a broken file
    # and the next good picture still works
    good = assistant.ask(Request(text="", attachments=(_png(tmp_path / "ok.png"),)))
    assert good.status == "ok" and good.result.text.startswith("ok.png: looks like tabby (")


def test_a_picture_is_indexed_by_its_text_and_found_again(assistant, tmp_path, monkeypatch):
    _use_fake_vision(assistant, monkeypatch)
    scan = _png(tmp_path / "receipt.png", (300, 200))
    outcome = assistant.ingest(scan)
    assert outcome.status == "ok", outcome.error
    assert [s.route.task for s in outcome.steps] == ["vision", "rag"]
    [doc] = [d for d in assistant.store.documents(("user-local",)) if d.name == "receipt.png"]
    assert doc.kind == "image" and doc.status == "complete"
    assert assistant.ingest(scan).status == "ok"  # the same picture again adds nothing
    assert len(assistant.store.documents(("user-local",))) == 1
    bomb = tmp_path / "bomb.png"
    Image.new("1", (9000, 9000)).save(bomb)
    refused = assistant.ingest(bomb)
    assert refused.status == "error" and "megapixels" in refused.error
