"""Real tier: EfficientNet-lite0 and RapidOCR from their PyPI packs, through the chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.flow.service import Assistant
from bench.answers_inputs import answer_part
from bench.vision import _invoice, _render
from models.base import Request
from tests.realenv import real_settings

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def assistant(tmp_path_factory) -> Assistant:
    return Assistant.from_settings(real_settings(tmp_path_factory.mktemp("vis") / "home"))


def _photo(name: str) -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / name


def test_a_cat_photo_is_labelled_a_cat_and_the_answer_says_so(assistant):
    outcome = assistant.ask(
        Request(text="What animal is in this picture?", attachments=(_photo("chelsea.png"),))
    )
    assert outcome.status == "ok", outcome.error
    vision, answer = outcome.steps
    assert vision.route.model == "efficientnet-lite0+rapidocr" and vision.result.usage.units_in == 1
    top = vision.result.text.split("looks like ")[1].split(" (")[0]
    assert top in {"tabby", "tiger cat", "Egyptian cat"}, vision.result.text
    # The answer itself, not the readers' findings after it ("tiger cat" would pass).
    assert "cat" in answer_part(answer.result.text).lower()


def test_printed_text_is_read(assistant, tmp_path):
    reader = assistant.pool.factory("efficientnet-lite0+rapidocr")
    reader.load()
    from models.vision import load_image

    lines = reader.read_text(load_image(_render("Total: 128.50 EUR", 36, tmp_path / "t.png")))
    assert "".join(lines).replace(" ", "") == "Total:128.50EUR"
    invoice = load_image(_invoice("47.00", tmp_path / "invoice.png"))
    assert any("47.00" in line for line in reader.read_text(invoice))
