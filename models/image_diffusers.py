"""Text-to-image and image-to-image with diffusers' pipelines (sd-turbo, SD 1.5, SDXL-Turbo, ...).

One loaded ``AutoPipelineForText2Image``; edits use
``AutoPipelineForImage2Image.from_pipe``, which reuses the same UNet, VAE
and text encoder objects, so the weights are in memory once.

GPU settings, and why:
- fp16 weights on CUDA: half the memory and the tensor cores; fp32 on CPU,
  where half-precision convolutions are slow or missing.
- SDPA attention: diffusers uses torch's scaled_dot_product_attention by
  default on torch 2 (flash / memory-efficient kernels on CUDA), so nothing
  is set; xformers would add a dependency for no gain.
- channels_last for the UNet on CUDA: cuDNN's convolutions are faster in
  NHWC; on CPU it is left alone.
- a tiny autoencoder (TAESD, ``tiny_vae``) is an option: decoding a 512²
  picture with the full VAE costs about as much as a turbo model's one
  denoising step, TAESD a few percent of it, at some loss of detail.
- model CPU offload when free GPU memory is below what the model needs:
  each part moves to the GPU only while it runs (slower, but it runs).

Every request gets its own pipeline object around the shared weights with
a fresh scheduler: a scheduler's timesteps are state, and two users must
never step each other's schedules.

The demo model trained in this project runs through this same adapter
(models/image_demo.py subclasses it): its folder is a diffusers pipeline
too (models/demo_pipeline.py), so loading, the per-request scheduler,
progress, Stop and the saved recipe are this code for every model.
"""

from __future__ import annotations

import inspect
import math
import queue
import threading
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from models.base import (
    Adapter,
    BadInput,
    ModelUnavailable,
    Progress,
    Refused,
    Request,
    Result,
    Usage,
    hub_cached,
    pick_device,
    require,
    require_download,
)

LIMIT = 1024  # largest side drawn; more would not fit a consumer GPU at SDXL sizes


def fit_size(width: float | None, height: float | None, default: int) -> tuple[int, int, str]:
    """(width, height, note): multiples of 8 within 64..LIMIT, as a UNet needs."""
    w, h = int(width or default), int(height or default)
    fw = min(LIMIT, max(64, w // 8 * 8))
    fh = min(LIMIT, max(64, h // 8 * 8))
    note = (
        ""
        if (fw, fh) == (w, h)
        else (f"The size was changed from {w}×{h} to {fw}×{fh} (multiples of 8, at most {LIMIT}).")
    )
    return fw, fh, note


def controls(options: dict) -> tuple[int, float, int]:
    """(steps, guidance, seed), bounded, from options with the model's defaults merged in."""
    steps = int(min(100, max(1, float(options["steps"]))))
    guidance = float(min(20.0, max(0.0, float(options["guidance"]))))
    # A seed given back reproduces a picture exactly; none (or -1) draws a new one.
    seed = options.get("seed", -1)
    return steps, guidance, int(seed) if seed >= 0 else uuid.uuid4().int % 2**31


def picture_result(image, out_dir: Path, recipe: dict, text: str, notes: list[str]) -> Result:
    """Save ``image`` (PIL) in ``out_dir`` with ``recipe`` in its PNG text chunks; its Result."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in recipe.items():
        info.add_text(key, str(value))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"image-{uuid.uuid4().hex[:12]}.png"
    image.save(path, pnginfo=info)
    return Result(
        text=text,
        files=(path,),
        usage=Usage(0, 1, "images"),
        notes=tuple(notes),
        recipe=tuple((k, str(v)) for k, v in recipe.items()),
    )


@dataclass(frozen=True)
class Canvas:
    """What one drawing starts from, and the pipeline that draws it."""

    base: type  # the pipeline class (text-to-image, or image-to-image for an edit)
    kwargs: dict  # the pipeline's size or start-picture arguments
    steps: int  # denoising steps asked of the pipeline
    width: int
    height: int
    note: str = ""  # what the person should know about the size
    picture: Path | None = None  # the attached picture an edit starts from

    @property
    def total(self) -> int:
        """Steps actually run: img2img runs steps × strength of them."""
        return int(self.steps * self.kwargs["strength"]) if self.picture else self.steps


def _drawn(pipe, call: dict, seed: int, total: int, cancel: threading.Event | None):
    """Runs the pipeline on a worker thread, yielding Progress per step; returns the picture.

    The thread lets each step be reported (and a stop be honoured) while
    diffusers' loop runs; an error there is raised here, in the caller's thread.
    """
    updates: queue.Queue = queue.Queue()

    def on_step(p, i, t, tensors):
        updates.put(Progress(i + 1, total))
        if cancel is not None and cancel.is_set():
            p._interrupt = True  # diffusers' own stop flag, read before the next step
        return tensors

    def work():
        import torch

        try:
            gen = torch.Generator("cpu").manual_seed(seed)
            updates.put(pipe(**call, generator=gen, callback_on_step_end=on_step).images[0])
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            updates.put(err)

    threading.Thread(target=work, daemon=True).start()
    while isinstance(item := updates.get(), Progress):
        yield item
    if isinstance(item, BaseException):
        raise item
    return item


class DiffusersImages(Adapter):
    family = "image"
    tasks = ("image_generation", "image_edit")
    enlarge = 1  # saved pictures are this many times the drawn size, with hard pixel edges

    def __init__(
        self,
        source: str,
        model_id: str,
        out_dir: Path,
        device: str = "auto",
        defaults: dict | None = None,
        public: bool = False,
        checker: str = "CompVis/stable-diffusion-safety-checker",
        tiny_vae: str | None = None,
        memory_mb: int = 4000,
        pictures: Collection[str] = (),
    ):
        self.source = source  # hub id or a local folder with model_index.json
        self.model_id = model_id  # catalog id, written into each picture
        self.out_dir = out_dir  # inside ASSISTANT_HOME
        self.preference = device
        self.defaults = {
            "steps": 25,
            "guidance": 7.5,
            "size": 512,
            "strength": 0.6,
            **(defaults or {}),
        }
        self.public, self.checker_source = public, checker
        self.tiny_vae, self.memory_mb = tiny_vae, memory_mb
        # Suffixes an edit starts from, from the app's table of file kinds
        # (the catalog passes them). Empty: every attachment is a picture.
        self.pictures = frozenset(pictures)
        self.pipe = self.checker = self.features = None

    def _pipeline(self, dtype):
        """The text-to-image pipeline from ``self.source`` (a hub id or a folder)."""
        from diffusers import AutoPipelineForText2Image

        require_download(self.source, "huggingface.co", hub_cached(self.source, "model_index.json"))
        # Our own checker runs in public mode (below); the pipeline's is not loaded twice.
        return AutoPipelineForText2Image.from_pretrained(
            self.source, dtype=dtype, safety_checker=None, requires_safety_checker=False
        )

    def prompt_notes(self, prompt: str) -> list[str]:
        """Anything to tell the person about this prompt before drawing it (none here)."""
        return []

    def load(self) -> None:
        require("torch")
        require("diffusers")  # the demo model's pipeline too
        import torch

        self.device = pick_device(self.preference)
        cuda = self.device.startswith("cuda")
        dtype = torch.float16 if cuda else torch.float32
        try:
            pipe = self._pipeline(dtype)
        except (OSError, ValueError) as err:
            raise ModelUnavailable(
                f"The image model '{self.source}' could not be loaded: {err}"
            ) from None
        if self.tiny_vae and hasattr(pipe, "vae"):
            from diffusers import AutoencoderTiny

            pipe.vae = AutoencoderTiny.from_pretrained(self.tiny_vae, dtype=dtype)
        if cuda:
            pipe.unet.to(memory_format=torch.channels_last)
            free, _ = torch.cuda.mem_get_info()
            if free < self.memory_mb * 1.2 * 2**20:
                pipe.enable_model_cpu_offload()
            else:
                pipe.to(self.device)
        else:
            pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        if self.public:
            self._load_checker(dtype)

    def _load_checker(self, dtype) -> None:
        try:
            from diffusers.pipelines.stable_diffusion.safety_checker import (
                StableDiffusionSafetyChecker,
            )
            from transformers import CLIPImageProcessor

            require_download(
                self.checker_source,
                "huggingface.co",
                hub_cached(self.checker_source, "config.json"),
            )
            self.checker = StableDiffusionSafetyChecker.from_pretrained(
                self.checker_source, dtype=dtype
            ).to(self.device)
            self.features = CLIPImageProcessor.from_pretrained(self.checker_source)
        except Exception as err:  # noqa: BLE001 - any failure means no checker
            self.pipe = None
            raise Refused(
                "Image generation is off on this public server: every generated picture must "
                f"pass an NSFW check, and the checker ({self.checker_source}) could not be "
                f"loaded ({type(err).__name__}: {err})."
            ) from None

    def unload(self) -> None:
        self.pipe = self.checker = self.features = None

    def _flagged(self, image) -> bool:
        import numpy as np
        import torch

        clip = self.features(image, return_tensors="pt").pixel_values
        with torch.inference_mode():
            _, nsfw = self.checker(
                images=np.asarray(image)[None] / 255.0,
                clip_input=clip.to(self.device, self.checker.dtype),
            )
        return bool(nsfw[0])

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Progress | Result]:
        prompt = " ".join(request.text.split())
        if not prompt:
            raise BadInput("Describe the picture to draw (or the change to make).")
        opts = {**self.defaults, **request.options.given()}
        steps, guidance, seed = controls(opts)
        negative = str(opts.get("negative") or "") or None
        notes = self.prompt_notes(prompt)
        canvas = self._canvas(request, opts, steps)
        if canvas.note:
            notes.append(canvas.note)
        words = getattr(self.pipe, "tokenizer", None)  # CLIP reads 77 tokens
        if words is not None and len(words(prompt)["input_ids"]) > words.model_max_length:
            notes.append(
                f"The prompt is longer than the {words.model_max_length} tokens "
                "the model reads; the rest was ignored."
            )
        scheduler = self.pipe.scheduler.__class__.from_config(self.pipe.scheduler.config)
        pipe = canvas.base.from_pipe(self.pipe, scheduler=scheduler)  # same weights, own scheduler
        pipe.set_progress_bar_config(disable=True)
        call = dict(
            prompt=prompt,
            negative_prompt=negative,
            num_inference_steps=canvas.steps,
            guidance_scale=guidance,
            **canvas.kwargs,
        )
        item = yield from _drawn(pipe, call, seed, canvas.total, cancel)
        item = self._kept(item, cancel)
        recipe = {
            "prompt": prompt,
            "negative": negative or "",
            "seed": seed,
            "steps": canvas.steps,
            "guidance": guidance,
            "size": f"{canvas.width}x{canvas.height}",
            "scheduler": type(scheduler).__name__,
            "model": self.model_id,
        }
        if canvas.picture:
            recipe.update(strength=canvas.kwargs["strength"], edited=canvas.picture.name)
        verb = "Edited" if canvas.picture else "Drew"
        text = (
            f"{verb} “{prompt}” ({self.model_id}, seed {seed}, {canvas.steps} steps, "
            f"guidance {guidance:g}, {canvas.width}×{canvas.height})."
        )
        yield picture_result(item, self.out_dir, recipe, text, notes)

    def _canvas(self, request: Request, opts: dict, steps: int) -> Canvas:
        """What is drawn on: an attached picture (an edit) or a blank of the asked size."""
        # A model that only draws from words (the demo) ignores attached pictures.
        editing = "image_edit" in self.tasks
        pictures = [
            p
            for p in request.attachments
            if editing and (not self.pictures or p.suffix.lower() in self.pictures)
        ]
        if pictures:  # an edit: the uploaded picture is the start
            from diffusers import AutoPipelineForImage2Image

            from models.vision import load_image

            start = load_image(pictures[0])
            width, height, note = fit_size(start.width, start.height, self.defaults["size"])
            strength = float(min(1.0, max(0.05, float(opts["strength"]))))
            # img2img runs steps × strength of them: at least one must remain.
            steps = max(steps, math.ceil(1 / strength))
            kwargs = {"image": start.resize((width, height)), "strength": strength}
            return Canvas(
                AutoPipelineForImage2Image, kwargs, steps, width, height, note, pictures[0]
            )
        base = type(self.pipe)  # a fresh pipeline of the same class around the same weights
        if "width" in inspect.signature(self.pipe.__call__).parameters:
            width, height, note = fit_size(
                opts.get("width"), opts.get("height"), self.defaults["size"]
            )
            return Canvas(base, {"width": width, "height": height}, steps, width, height, note)
        # A model that draws one size only (the demo: 32×32).
        width = height = self.defaults["size"]
        asked = {request.options.width, request.options.height} - {None, width}
        note = f"{self.model_id} draws {width}×{height} pictures only; the size was not used."
        return Canvas(base, {}, steps, width, height, note if asked else "")

    def _kept(self, image, cancel: threading.Event | None):
        """The drawn picture as it is saved, unless it was stopped or the checker flags it."""
        if cancel is not None and cancel.is_set():
            raise Refused("Stopped: no picture was kept.")
        if self.checker is not None and self._flagged(image):
            raise Refused(
                "The picture was withheld: the NSFW checker flagged it. Try a different prompt."
            )
        if self.enlarge > 1:
            from PIL import Image

            image = image.resize(
                (image.width * self.enlarge, image.height * self.enlarge),
                Image.Resampling.NEAREST,
            )
        return image
