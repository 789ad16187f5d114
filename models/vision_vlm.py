"""Pictures answered by a vision-language model from the hub (SmolVLM, BLIP, Florence-2, ...).

The offline default (models/vision.py) names what a classifier and OCR saw
and lets the text model answer; a vision-language model looks at the
picture and answers the question itself, so its reply is final. Any model
``AutoModelForImageTextToText`` knows loads here, from a hub id or a local
folder. Chat models (SmolVLM) get the question through their chat template
with an image slot per picture; captioners without one (BLIP) get the
question as the caption's start.

fp16 on CUDA, fp32 on CPU (half precision is slow there); greedy decoding.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from models.base import (
    Adapter,
    BadInput,
    ModelUnavailable,
    Request,
    Result,
    Usage,
    hub_cached,
    pick_device,
    require,
    require_download,
)


class HubVision(Adapter):
    family = "vision"
    tasks = ("vision",)

    def __init__(self, source: str, device: str = "auto"):
        self.source = source  # hub id or local folder
        self.preference = device
        self.model = self.processor = None

    def load(self) -> None:
        require("torch")
        require("transformers")
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.device = pick_device(self.preference)
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        require_download(self.source, "huggingface.co", hub_cached(self.source, "config.json"))
        try:
            self.processor = AutoProcessor.from_pretrained(self.source)
            self.model = AutoModelForImageTextToText.from_pretrained(self.source, dtype=dtype)
        except (OSError, ValueError) as err:
            raise ModelUnavailable(
                f"The vision model '{self.source}' could not be loaded: {err}"
            ) from None
        self.model.to(self.device).eval()

    def unload(self) -> None:
        self.model = self.processor = None

    def _inputs(self, images: list, question: str) -> dict:
        if getattr(self.processor, "chat_template", None):
            content = [{"type": "image"} for _ in images] + [{"type": "text", "text": question}]
            prompt = self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True
            )
            return self.processor(text=prompt, images=images, return_tensors="pt")
        if len(images) > 1:
            raise BadInput("This vision model reads one picture at a time; attach one.")
        return self.processor(images=images[0], text=question, return_tensors="pt")

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        from models.text import stream_generate
        from models.vision import load_image

        if not request.attachments:
            raise BadInput("Attach a picture to ask about it.")
        images = [load_image(p) for p in request.attachments]
        question = request.text.strip() or "Describe this picture."
        inputs = {k: v.to(self.device) for k, v in self._inputs(images, question).items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        text, n_out = yield from stream_generate(
            self.model, tokenizer, inputs, request.max_new_tokens, 0.0, cancel
        )
        yield Result(text=text, usage=Usage(len(images), n_out, "images"))
