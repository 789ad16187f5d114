"""The hub image path (sd-turbo, SD 1.5, SDXL-Turbo) exercised with a local folder.

The machines that run these tests cannot reach the model hub, so a tiny
Stable Diffusion pipeline with untrained weights is saved to a folder and
loaded through the same ``from_pretrained`` code a hub id takes. Its
pictures are noise: they test plumbing, and no user is ever shown one.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from models.base import ModelUnavailable, PictureOptions, Progress, Refused, Request, Result
from tests.conftest import seeded


def _tiny_tokenizer(folder: Path) -> None:
    """A CLIP BPE tokenizer with single characters only: enough to turn text into ids."""
    # GPT-2's byte-to-printable-character table, which CLIP's BPE also uses.
    keep = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = [chr(b) for b in keep] + [chr(256 + n) for n in range(256 - len(keep))]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory) -> Path:
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with seeded():
        root = tmp_path_factory.mktemp("tiny-sd")
        _tiny_tokenizer(root / "tok")
        tokenizer = CLIPTokenizer(
            str(root / "tok" / "vocab.json"), str(root / "tok" / "merges.txt"), model_max_length=77
        )
        text = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=77,
                projection_dim=32,
            )
        )
        unet = UNet2DConditionModel(
            sample_size=16,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            norm_num_groups=32,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(32, 64),
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            norm_num_groups=32,
        )
        scheduler = DDIMScheduler(steps_offset=1, clip_sample=False)
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        folder = root / "model"
        pipe.save_pretrained(folder)
    return folder


@pytest.fixture()
def images(tiny_sd, tmp_path):
    from models.image_diffusers import DiffusersImages

    defaults = {"steps": 3, "guidance": 2.0, "size": 64, "strength": 0.5}
    adapter = DiffusersImages(str(tiny_sd), "tiny-sd", tmp_path / "outputs", "cpu", defaults)
    adapter.load()
    return adapter


def _run(adapter, **kw):
    items = list(adapter.stream(Request(**kw)))
    return [i for i in items if isinstance(i, Progress)], items[-1]


def _recipe(path: Path) -> dict:
    from PIL import Image

    with Image.open(path) as img:
        return dict(img.text) | {"size_px": f"{img.width}x{img.height}"}


def test_a_local_diffusers_folder_draws_with_progress_per_step_and_a_recipe(images):
    steps, result = _run(images, text="a red fox", options=PictureOptions(seed=7.0))
    assert isinstance(result, Result) and result.files[0].parent == images.out_dir
    assert [s.done for s in steps] == [1, 2, 3] and steps[-1].total == 3
    meta = _recipe(result.files[0])
    assert meta["prompt"] == "a red fox" and meta["seed"] == "7" and meta["steps"] == "3"
    assert meta["scheduler"] == "DDIMScheduler" and meta["model"] == "tiny-sd"
    assert meta["size_px"] == "64x64" and dict(result.recipe)["seed"] == "7"


def test_a_prompt_over_the_token_limit_is_drawn_and_the_cut_is_said(images):
    _, result = _run(images, text="a very long prompt " * 20)
    assert result.files and any("77 tokens" in n for n in result.notes)


def test_same_recipe_same_picture_and_other_steps_are_honoured(images):
    from PIL import Image

    def pixels(**options):
        _, result = _run(images, text="a boat", options=PictureOptions(**options))
        return Image.open(result.files[0]).tobytes(), _recipe(result.files[0])

    first, meta = pixels(seed=3.0)
    again, _ = pixels(seed=3.0)
    other, meta8 = pixels(seed=3.0, steps=8.0)
    assert first == again and first != other
    assert meta["steps"] == "3" and meta8["steps"] == "8"


def test_an_edit_reuses_the_loaded_weights_and_records_its_strength(images, tmp_path):
    from diffusers import AutoPipelineForImage2Image
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (100, 60), (200, 30, 30)).save(photo)
    steps, result = _run(
        images,
        text="make it blue",
        attachments=(photo,),
        options=PictureOptions(strength=0.5, steps=4.0),
    )
    meta = _recipe(result.files[0])
    assert meta["edited"] == "photo.png" and meta["strength"] == "0.5"
    assert meta["size_px"] == "96x64"  # multiples of 8, at least 64, as the UNet needs
    assert len(steps) == 2  # img2img runs steps × strength
    assert any("100×60 to 96×64" in n for n in result.notes)
    edit = AutoPipelineForImage2Image.from_pipe(images.pipe)
    assert edit.unet is images.pipe.unet and edit.vae is images.pipe.vae  # one copy of weights


def test_two_users_drawing_at_once_each_get_their_own_picture(images):
    import numpy as np
    from PIL import Image

    def draw(seed, into):
        _, result = _run(images, text="a tree", options=PictureOptions(seed=seed))
        into[seed] = np.asarray(Image.open(result.files[0]), dtype=np.float32)

    alone, together = {}, {}
    for seed in (1.0, 2.0):
        draw(seed, alone)
    threads = [threading.Thread(target=draw, args=(s, together)) for s in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Two forward passes at once may split CPU threads differently and round a
    # pixel by one; crossed schedulers or latents would give the other picture.
    for mine, other in ((1.0, 2.0), (2.0, 1.0)):
        assert np.abs(together[mine] - alone[mine]).mean() < 1.0
        assert np.abs(together[mine] - alone[other]).mean() > 10  # seeds differ by ~50


def test_stop_keeps_no_picture(images):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Refused, match="Stopped"):
        list(images.stream(Request(text="a cat", options=PictureOptions(steps=5.0)), cancel))
    assert not list(images.out_dir.glob("*.png")) if images.out_dir.exists() else True


def test_public_mode_without_a_loadable_checker_turns_generation_off(tiny_sd, tmp_path):
    from models.image_diffusers import DiffusersImages

    adapter = DiffusersImages(
        str(tiny_sd),
        "tiny-sd",
        tmp_path,
        "cpu",
        public=True,
        checker=str(tmp_path / "no-checker-here"),
    )
    with pytest.raises(Refused, match="NSFW check"):
        adapter.load()


def test_a_checker_that_flags_the_picture_withholds_it(tiny_sd, tmp_path):
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    from models.image_diffusers import DiffusersImages

    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=32,
    )
    checker = StableDiffusionSafetyChecker(config)
    with torch.no_grad():  # every concept threshold below any score: everything is flagged
        checker.concept_embeds_weights.fill_(-10.0)
    folder = tmp_path / "checker"
    checker.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32).save_pretrained(folder)
    adapter = DiffusersImages(
        str(tiny_sd),
        "tiny-sd",
        tmp_path / "out",
        "cpu",
        {"steps": 2, "size": 64},
        public=True,
        checker=str(folder),
    )
    adapter.load()
    with pytest.raises(Refused, match="NSFW checker flagged"):
        list(adapter.stream(Request(text="anything")))
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))
    with torch.no_grad():  # thresholds far above any score: nothing is flagged
        adapter.checker.concept_embeds_weights.fill_(10.0)
        adapter.checker.special_care_embeds_weights.fill_(10.0)
    assert list(adapter.stream(Request(text="anything")))[-1].files


def test_a_hub_model_on_a_machine_without_the_hub_fails_clearly(tmp_path, monkeypatch):
    from models.image_diffusers import DiffusersImages

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    adapter = DiffusersImages("stabilityai/sd-turbo-not-cached", "sd-turbo", tmp_path, "cpu")
    with pytest.raises(ModelUnavailable):
        adapter.load()
