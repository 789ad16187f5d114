"""The first router: attachments decide first, then unmistakable words."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.catalog.entries import Catalog
from assistant.routing.router import Router
from models.base import BadInput, Request


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(Catalog.load())


def route(router, text="", files=(), model=None):
    return router.route(Request(text=text, attachments=tuple(Path(f) for f in files), model=model))


@pytest.mark.parametrize("name", ["memo.wav", "call.MP3", "voice.ogg", "rec.webm", "a.flac"])
def test_audio_goes_to_speech(router, name):
    decision = route(router, files=[name])
    assert decision.task == "asr" and decision.model == "whisper-base"
    assert "audio" in decision.reason


def test_image_goes_to_vision_and_edit_words_to_image_edit(router):
    assert route(router, "what is this?", ["cat.png"]).task == "vision"
    assert route(router, "change the background to blue", ["cat.jpg"]).task == "image_edit"


@pytest.mark.parametrize("name", ["contract.pdf", "notes.txt", "page.html", "report.docx"])
def test_documents_go_to_retrieval(router, name):
    assert route(router, "what does it say about notice?", [name]).task == "rag"


def test_an_unsupported_file_is_refused_by_name(router):
    with pytest.raises(BadInput, match="setup.exe"):
        route(router, "run this", ["setup.exe"])


@pytest.mark.parametrize(
    "text",
    [
        "draw a lighthouse at sunset",
        "нарисуй кота",
        "narysuj kota",
        "画一只猫",
        "Generate an image of a red bus",
    ],
)
def test_requests_for_pictures_go_to_image_generation(router, text):
    assert route(router, text).task == "image_generation"


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of France?",
        "Какая столица Франции?",
        "Ile to 2+2?",
        "法国的首都是哪里?",
        "Tell me about drawing rooms in Victorian houses",
    ],
)
def test_plain_questions_go_to_text(router, text):
    decision = route(router, text)
    assert decision.task == "text" and decision.model == "smollm2-135m-instruct"
    assert "qwen2.5-1.5b-instruct" in [a["model"] for a in decision.alternatives]


def test_an_override_is_honoured_and_said(router):
    decision = route(router, "hello", model="qwen2.5-1.5b-instruct")
    assert decision.model == "qwen2.5-1.5b-instruct" and "you chose" in decision.reason
    assert decision.confidence == 1.0


def test_an_override_that_cannot_serve_the_task_is_refused(router):
    with pytest.raises(BadInput, match="does not serve text"):
        route(router, "hello", model="whisper-base")


def test_an_unknown_model_lists_the_known_ones(router):
    with pytest.raises(BadInput, match="smollm2-135m-instruct"):
        route(router, "hello", model="gpt-9")


def test_preferred_default_from_settings(router):
    preferred = Router(router.catalog, {"text": "qwen2.5-1.5b-instruct"})
    assert preferred.route(Request(text="hi")).model == "qwen2.5-1.5b-instruct"


def test_a_per_task_pick_applies_to_its_task_only(router):
    prefer = (("asr", "whisper-tiny.en"), ("text", "qwen2.5-1.5b-instruct"))
    speech = router.route(Request(attachments=(Path("a.wav"),), prefer=prefer))
    assert speech.model == "whisper-tiny.en" and "picked for asr" in speech.reason
    assert router.route(Request(text="hi", prefer=prefer)).model == "qwen2.5-1.5b-instruct"
    assert router.route(Request(text="draw a cat", prefer=prefer)).model == "demo-scenes"


def test_a_pick_that_cannot_serve_its_task_is_refused(router):
    with pytest.raises(BadInput, match="does not serve it"):
        router.route(Request(text="hi", prefer=(("text", "whisper-base"),)))


def test_an_unclear_request_is_answered_in_words(router):
    decision = route(router, "forest")  # the classifier leans to a picture, but barely
    assert decision.task == "text" and decision.reason.startswith("unclear")


def test_a_scene_in_the_demo_models_words_is_a_picture_and_look_alikes_are_not(router):
    for text in (
        "a red circle on a blue background",
        "draw two yellow squares on a black background",
        "Red square at the left on green background",
    ):
        decision = route(router, text)
        assert decision.task == "image_generation", text
        assert decision.reason.startswith("describes shapes on a coloured background"), text
    for text in (
        "what is the background of the cold war?",
        "green tea benefits",
        "are you back?",
        "is a red square a rectangle?",
    ):
        assert route(router, text).task == "text", text


def test_short_conversational_turns_are_answered_in_words(router):
    # "still here" once drew a picture (confidence 0.61): close to "still life"
    # in character n-grams, with no short chat turns among the text exemplars.
    for text in ("still here", "still here?", "hi there", "thank you!", "ты тут?"):
        assert route(router, text).task == "text", text
