"""Train the demo text-to-image model on the CPU: `python -m assistant train demo-diffusion`.

No real text-to-image weights ship on PyPI, so the offline default is a
small model trained here on the scene grammar of training/scenes.py:

- a ~7M-parameter diffusers ``UNet2DConditionModel`` on 32×32 pictures
  folded into 16×16×12 (2×2 pixel-unshuffle: a quarter of the positions,
  the same information), v-prediction with a cosine noise schedule;
- conditioned by cross-attention on the token states of the packed MiniLM
  (frozen), with 10% of captions dropped so classifier-free guidance works;
- fp32: on CPUs without native bf16 (this project's AVX2 EPYC), bf16
  autocast made a step ~13× slower, not faster;
- an exponential moving average of the weights is what gets saved.

Held-out (background, colour, shape) combinations never appear in training;
``evaluate`` draws them through the saved pipeline (models/demo_pipeline.py,
the same one the app loads) and the judge scores what was drawn.
"""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np

from assistant.catalog.backends import minilm_folder
from models.demo_facts import GUIDANCE
from training import scenes

OUT = Path(__file__).resolve().parent.parent / "models" / "demo_diffusion"


class TextEncoder:
    """Frozen MiniLM token states for captions, cached (the grammar has few of them).

    Encoded by the same function the pipeline uses when drawing.
    """

    def __init__(self, folder: Path):
        from models.demo_pipeline import text_encoder

        self.tokenizer, self.model = text_encoder(folder)
        self.cache: dict = {}

    def __call__(self, captions: list[str]):
        import torch

        from models.demo_pipeline import encode

        missing = [c for c in dict.fromkeys(captions) if c not in self.cache]
        if missing:
            for caption, s in zip(
                missing, encode(self.tokenizer, self.model, missing), strict=True
            ):
                self.cache[caption] = s.clone()
        return torch.stack([self.cache[c] for c in captions])


def unet_config() -> dict:
    return dict(
        sample_size=16,
        in_channels=12,
        out_channels=12,
        layers_per_block=1,
        block_out_channels=(64, 128, 128),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=384,
        attention_head_dim=8,
        norm_num_groups=32,
    )


def scheduler_config() -> dict:
    return dict(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        clip_sample=False,
    )


def learning_rate(peak: float, step: int, done_share: float) -> float:
    """Warm up for 100 steps, then a cosine decay to a tenth by the end of the
    budget: the run's length is set in minutes, so the decay is by time."""
    return (
        peak * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done_share)))
    )


def _batch(rng, exclude, batch: int, encoder):
    """(pictures as 12-channel 16x16 tensors in [-1, 1], their captions embedded).

    A tenth of the captions are empty, for classifier-free guidance."""
    import torch
    import torch.nn.functional as F

    batch_scenes = [scenes.random_scene(rng, exclude) for _ in range(batch)]
    images = np.stack([scenes.render(s, rng) for s in batch_scenes])
    x0 = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    x0 = F.pixel_unshuffle(x0, 2)
    captions = [s.caption if rng.random() > 0.1 else "" for s in batch_scenes]
    return x0, encoder(captions)


def train(
    minutes: float,
    out: Path = OUT,
    batch: int = 64,
    seed: int = 0,
    progress=print,
    resume: Path | None = None,
    peak_lr: float = 1e-3,
) -> dict:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    rng = random.Random(seed)
    exclude = scenes.held_out()
    encoder = TextEncoder(minilm_folder())
    unet = UNet2DConditionModel(**unet_config())
    done = None  # what the first part of a resumed run recorded
    if resume is not None:  # go on from saved (EMA) weights, e.g. a longer run in two parts
        saved = UNet2DConditionModel.from_pretrained(resume / "unet", dtype=torch.float32)
        unet.load_state_dict(saved.state_dict())
        done = json.loads((resume / "training.json").read_text())
        progress(f"resuming after {done['steps']} steps ({done['wall_s'] / 60:.0f} min)")
    ema = UNet2DConditionModel(**unet_config())
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    noise = DDPMScheduler(**scheduler_config())
    opt = torch.optim.AdamW(unet.parameters(), lr=peak_lr, weight_decay=1e-2)
    params = sum(p.numel() for p in unet.parameters())
    progress(f"UNet {params / 1e6:.1f}M parameters; training for {minutes:g} min on the CPU")
    started, step, losses = time.time(), 0, []
    while time.time() - started < minutes * 60:
        x0, cond = _batch(rng, exclude, batch, encoder)
        t = torch.randint(0, 1000, (batch,))
        eps = torch.randn_like(x0)
        xt = noise.add_noise(x0, eps, t)
        target = noise.get_velocity(x0, eps, t)
        done_share = min(1.0, (time.time() - started) / (minutes * 60))
        for group in opt.param_groups:
            group["lr"] = learning_rate(peak_lr, step, done_share)
        loss = F.mse_loss(unet(xt, t, encoder_hidden_states=cond).sample, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        decay = min(0.999, (1 + step) / (10 + step)) if resume is None else 0.999
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            progress(
                f"  step {step}, {time.time() - started:.0f} s, loss {np.mean(losses[-50:]):.4f}"
            )
    wall = time.time() - started
    run = {"steps": step, "minutes": round(wall / 60, 1), "peak_lr": peak_lr}
    if resume is not None:  # the record covers both parts of a resumed run
        step, wall = step + done["steps"], wall + done["wall_s"]
    info = {"steps": step, "batch": batch, "wall_s": round(wall), "seed": seed}
    info["final_loss"] = round(float(np.mean(losses[-50:])), 4)
    save(ema, out, {**info, "params": params, "runs": _runs(done) + [run]})
    return {"steps": step, "wall_s": wall}


def _runs(done: dict | None) -> list[dict]:
    """The earlier parts of a resumed run, as its training.json recorded them (none if new)."""
    if done is None:
        return []
    first = {"steps": done["steps"], "minutes": round(done["wall_s"] / 60, 1), "peak_lr": 1e-3}
    return done.get("runs", [first])


def save(unet, out: Path, info: dict) -> None:
    """The pipeline folder the app loads (models/demo_pipeline.py), and how it was trained."""
    import torch

    from models.demo_pipeline import save as save_pipeline

    save_pipeline(out, unet.to(torch.float16), scheduler_config())
    (out / "training.json").write_text(json.dumps(info, indent=1))


def evaluate(
    folder: Path = OUT, per_combo: int = 4, guidance: float = GUIDANCE, progress=print
) -> dict:
    """Judge pictures of held-out prompts (combinations never seen in training).

    Single objects are the measure; objects at a place and two-object scenes
    are reported beside them.
    """
    import torch

    from models.demo_pipeline import load

    pipe = load(folder, minilm_folder(), torch.float32)
    pipe.set_progress_bar_config(disable=True)
    result = {}
    for which in ("single", "placed", "two"):
        wanted = scenes.test_scenes(which, per_combo if which == "single" else 2)
        started = time.time()
        pictures = []
        for i in range(0, len(wanted), 32):
            part = wanted[i : i + 32]
            drawn = pipe(
                [w.caption for w in part],
                guidance_scale=guidance,
                generator=torch.Generator().manual_seed(i),
                output_type="np",
            )
            pictures.extend(drawn.images)
        seen = [scenes.look(p) for p in pictures]
        result[f"{which}_right"] = float(np.mean(list(map(scenes.follows, seen, wanted))))
        result[f"{which}_images"] = len(wanted)
        if which == "single":
            result["seconds_per_image"] = (time.time() - started) / len(wanted)
            scores = list(map(scenes.agrees, map(scenes.judge, pictures), wanted))
            for k in ("background", "color", "shape", "all"):
                result[k] = float(np.mean([s[k] for s in scores]))
            result["color_and_shape"] = float(np.mean([s["color"] and s["shape"] for s in scores]))
    progress(json.dumps(result))
    return result
