"""DemoScenePipeline: the demo model as a diffusers ``DiffusionPipeline``.

A pipeline like StableDiffusionPipeline, minus the autoencoder: the UNet
works on 32×32 pictures folded into 16×16×12 (2×2 pixel patches), so its
output is unfolded, not decoded. Its text encoder is the packed MiniLM
(a transformers ``BertModel``), whose token states are the cross-attention
input, where Stable Diffusion uses CLIP's.

Being a pipeline is what lets models/image_diffusers.py drive it exactly
as it drives sd-turbo: ``from_pretrained`` on a folder with a
``model_index.json``, ``from_pipe`` for a per-request scheduler,
``callback_on_step_end`` for progress and ``_interrupt`` for Stop. The
folder (models/demo_diffusion) holds the UNet and the scheduler; the text
encoder and tokenizer are passed in at load, since the MiniLM pack already
ships them and a copy would be 90 MB.
"""

# No `from __future__ import annotations` here: diffusers' from_pipe reads the
# constructor's type hints as classes to decide which components carry over.
import json
from pathlib import Path

from diffusers import (
    DDIMScheduler,
    DiffusionPipeline,
    ImagePipelineOutput,
    UNet2DConditionModel,
)

from models.demo_facts import GUIDANCE, MAX_TOKENS


class DemoScenePipeline(DiffusionPipeline):
    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(
        self, unet: UNet2DConditionModel, scheduler: DDIMScheduler, text_encoder, tokenizer
    ):
        super().__init__()
        self.register_modules(
            unet=unet, scheduler=scheduler, text_encoder=text_encoder, tokenizer=tokenizer
        )

    def encode(self, prompts: list[str]):
        return encode(self.tokenizer, self.text_encoder, prompts).to(self.unet.dtype)

    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = GUIDANCE,
        generator=None,
        output_type: str = "pil",
        callback_on_step_end=None,
    ):
        """Draw ``prompt`` (one or a batch) with classifier-free guidance.

        The model runs on the prompt and on the negative prompt (the empty
        caption it was trained to drop to, by default) in one batch, and the
        difference is pushed ``guidance_scale`` times. ``output_type`` "np"
        gives uint8 arrays (B, 32, 32, 3) for the bench; "pil" gives pictures.
        """
        import torch
        import torch.nn.functional as F

        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        negative = negative_prompt or ""
        negatives = [negative] * len(prompts) if isinstance(negative, str) else list(negative)
        self._interrupt = False
        size = self.unet.config.sample_size
        channels = self.unet.config.in_channels
        # Noise drawn on the generator's device (the CPU by default), so a seed
        # draws the same picture on a CPU and on a GPU.
        x = torch.randn((len(prompts), channels, size, size), generator=generator)
        x = x.to(self.unet.device, self.unet.dtype)
        cond = torch.cat([self.encode(negatives), self.encode(prompts)])
        self.scheduler.set_timesteps(num_inference_steps)
        with torch.inference_mode():
            for i, t in enumerate(self.scheduler.timesteps):
                if self._interrupt:
                    break
                out = self.unet(torch.cat([x, x]), t, encoder_hidden_states=cond).sample
                uncond, text = out.chunk(2)
                x = self.scheduler.step(uncond + guidance_scale * (text - uncond), t, x)
                x = x.prev_sample
                if callback_on_step_end is not None:
                    x = callback_on_step_end(self, i, t, {"latents": x})["latents"]
        # Unfold the 2×2 patches: (B, 12, 16, 16) -> (B, 3, 32, 32), then to uint8.
        img = F.pixel_shuffle(x.float(), 2).clamp(-1, 1)
        pixels = ((img + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        if output_type == "np":
            return ImagePipelineOutput(images=pixels)
        from PIL import Image

        return ImagePipelineOutput(images=[Image.fromarray(p) for p in pixels])


def text_encoder(text_folder: Path):
    """(tokenizer, frozen encoder) of the packed MiniLM, as training and drawing both read it."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(text_folder, model_max_length=MAX_TOKENS)
    return tokenizer, AutoModel.from_pretrained(text_folder).eval()


def encode(tokenizer, encoder, prompts: list[str]):
    """MiniLM token states (B, MAX_TOKENS, 384) of ``prompts``: the UNet's cross-attention input."""
    import torch

    enc = tokenizer(
        prompts, padding="max_length", truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
    )
    enc = {k: v.to(encoder.device) for k, v in enc.items()}
    with torch.inference_mode():
        return encoder(**enc).last_hidden_state


def load(folder: Path, text_folder: Path, dtype=None) -> DemoScenePipeline:
    """The demo pipeline from its folder, with the packed MiniLM as its text encoder."""
    tokenizer, encoder = text_encoder(text_folder)
    return DemoScenePipeline.from_pretrained(
        folder, text_encoder=encoder, tokenizer=tokenizer, dtype=dtype
    )


def save(folder: Path, unet, scheduler_config: dict) -> None:
    """Write the UNet, the sampling scheduler and model_index.json (no text encoder: see above)."""
    import diffusers

    folder.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(folder / "unet", safe_serialization=True)
    # clip_sample=False: DDIM's default clipping wrecks pixel-space samples.
    DDIMScheduler(**{**scheduler_config, "clip_sample": False}).save_pretrained(
        folder / "scheduler"
    )
    index = {
        "_class_name": DemoScenePipeline.__name__,
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "BertModel"],
        "tokenizer": ["transformers", "BertTokenizerFast"],
        "unet": ["diffusers", "UNet2DConditionModel"],
    }
    (folder / "model_index.json").write_text(json.dumps(index, indent=1) + "\n")
