"""Picture generation plumbing with a tiny untrained UNet (never shown to a user as a generator)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PIL import Image

from assistant.flow.pictures import as_redraw
from models.base import BadInput, PictureOptions, Request
from models.demo_pipeline import DemoScenePipeline, save
from models.image_demo import CAN_DRAW, DemoSceneDiffusion
from tests.conftest import seeded
from training.train_demo import scheduler_config


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from diffusers import UNet2DConditionModel

    folder = tmp_path_factory.mktemp("tiny")
    with seeded():
        unet = UNet2DConditionModel(
            sample_size=16,
            in_channels=12,
            out_channels=12,
            layers_per_block=1,
            block_out_channels=(32, 32),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=384,
            attention_head_dim=4,
            norm_num_groups=8,
        )
    save(folder, unet, scheduler_config())
    return folder


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    from assistant.catalog.backends import minilm_folder

    a = DemoSceneDiffusion(tiny_model, minilm_folder, tmp_path_factory.mktemp("out"), steps=4)
    a.load()
    return a


def _draw(adapter, text: str):
    return list(adapter.stream(Request(text=text)))[-1]


def test_a_picture_is_saved_with_how_it_was_made(adapter):
    result = _draw(adapter, "a red circle on a blue background")
    [path] = result.files
    with Image.open(path) as img:
        assert img.size == (256, 256)
        meta = img.text
    assert meta["prompt"] == "a red circle on a blue background" and meta["steps"] == "4"
    assert meta["scheduler"] == "DDIMScheduler" and meta["model"] == "demo-scenes"
    assert int(meta["seed"]) >= 0 and result.usage.units_out == 1
    assert result.notes == ()  # inside its grammar: nothing to warn about


def test_the_demo_is_a_diffusers_pipeline_driven_like_the_hub_models(adapter, tiny_model):
    import json

    from diffusers import DDIMScheduler

    from models.image_diffusers import DiffusersImages

    index = json.loads((tiny_model / "model_index.json").read_text())
    assert index["_class_name"] == "DemoScenePipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert isinstance(adapter, DiffusersImages) and isinstance(adapter.pipe, DemoScenePipeline)
    # DDIM without clipping: its default clip_sample=True wrecks pixel-space samples.
    assert isinstance(adapter.pipe.scheduler, DDIMScheduler)
    assert adapter.pipe.scheduler.config.clip_sample is False
    # The packed MiniLM reads the prompt; its 20-token limit is the tokenizer's.
    assert adapter.pipe.tokenizer.model_max_length == 20
    result = _draw(adapter, "a red circle on a blue background")
    assert dict(result.recipe)["size"] == "32x32"
    asked = Request(
        text="a red circle on a blue background", options=PictureOptions(width=512.0, height=512.0)
    )
    sized = list(adapter.stream(asked))[-1]
    assert any("draws 32×32 pictures only" in n for n in sized.notes)


def test_stop_mid_picture_keeps_nothing(adapter):
    from models.base import Progress, Refused

    cancel = threading.Event()
    seen = []
    with pytest.raises(Refused, match="Stopped"):
        for item in adapter.stream(Request(text="a red circle on a blue background"), cancel):
            if isinstance(item, Progress):
                seen.append(item)
                cancel.set()
    assert seen and seen[0].total == 4 and len(seen) < 4


def test_a_prompt_outside_the_grammar_gets_the_picture_and_what_it_can_draw(adapter):
    result = _draw(adapter, "a photo of an astronaut riding a horse")
    assert result.files and CAN_DRAW in result.notes
    long = _draw(adapter, "a red circle on a blue background " + "with a tiny dot " * 10)
    assert any("longer than the 20 tokens" in n for n in long.notes)
    with pytest.raises(BadInput, match="Describe the picture"):
        _draw(adapter, "   ")


def test_two_users_drawing_at_once_each_get_their_own_picture(adapter):
    results = {}

    def draw(prompt):
        results[prompt] = _draw(adapter, prompt)

    prompts = ["a red circle on a blue background", "a green square on a white background"]
    threads = [threading.Thread(target=draw, args=(p,)) for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for prompt in prompts:
        with Image.open(results[prompt].files[0]) as img:
            assert img.text["prompt"] == prompt


def test_public_mode_turns_generation_off_without_a_checker(assistant, fake_chat):
    from dataclasses import replace

    assistant.settings = replace(assistant.settings, public=True)
    outcome = assistant.ask(
        Request(text="a red circle on a blue background", task="image_generation")
    )
    assert outcome.status == "refused" and "NSFW check" in outcome.error
    assert assistant.ask(Request(text="hello")).status == "ok"  # text still works


def test_a_seed_given_back_draws_the_same_picture_and_steps_are_honoured(adapter):
    import numpy as np

    def draw(**options):
        result = list(
            adapter.stream(
                Request(text="a red circle on a blue background", options=PictureOptions(**options))
            )
        )[-1]
        with Image.open(result.files[0]) as img:
            return np.asarray(img).copy(), dict(img.text), dict(result.recipe)

    first, meta, recipe = draw(seed=123, steps=3)
    again, _, _ = draw(seed=123, steps=3)
    other, _, _ = draw(seed=124, steps=3)
    assert (first == again).all() and not (first == other).all()
    assert meta["seed"] == "123" and meta["steps"] == "3" and recipe["steps"] == "3"


def test_same_again_with_8_steps_redraws_the_last_picture_with_that_change(assistant):
    from PIL import Image

    first = assistant.ask(
        Request(
            text="a red circle on a blue background",
            session_id="s1",
            task="image_generation",
            options=PictureOptions(steps=4.0),
        )
    )
    assert first.status == "ok", first.error
    # No hosted API draws 32×32 demo scenes: no cloud price to flatter it with.
    assert first.cost.usd_cloud is None and first.cost.usd_local > 0
    again = assistant.ask(Request(text="same again with 8 steps", session_id="s1"))
    assert again.status == "ok" and again.route.task == "image_generation"
    before = dict(first.result.recipe)
    after = Image.open(again.result.files[0]).text
    assert after["prompt"] == before["prompt"] and after["seed"] == before["seed"]
    assert before["steps"] == "4" and after["steps"] == "8"
    # another session has no picture to redo, and a question is a question
    for text, session in (("same again with 8 steps", "s2"), ("again, what is 2+2?", "s1")):
        assert as_redraw(assistant, Request(text=text, session_id=session)).text == text
