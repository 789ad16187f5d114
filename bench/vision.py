"""bench vision: what the offline picture readers get right, on pictures nobody here drew.

    python -m assistant bench vision [--json]

- Labels: scikit-image's sample photos (public-domain or CC0 photos shipped
  in its wheel) with the ImageNet classes a person would accept for each;
  top-1 and top-5 accuracy of EfficientNet-lite0.
- OCR: lines of text rendered here with Pillow's bundled font at several
  sizes; exact match, and match ignoring spaces (RapidOCR often drops a
  space between a word and a number).
- Answers: invoices rendered here, asked "What is the total?" through the
  whole chain (classifier + OCR → text model): does the answer carry the total?
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.measure import metric, share_weights

# image -> ImageNet class names (first lemma, as in models/imagenet_classes.txt) accepted for it
LABELS = {
    "chelsea.png": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee.png": {"espresso", "cup", "coffee mug"},
    "rocket.jpg": {"missile", "projectile", "space shuttle"},
    "motorcycle_left.png": {"moped", "motor scooter", "crash helmet"},
    "motorcycle_right.png": {"moped", "motor scooter", "crash helmet"},
    "camera.png": {"tripod", "reflex camera", "Polaroid camera"},
    "astronaut.png": {"space shuttle", "military uniform", "suit"},  # no ImageNet class fits well
}
LINES = [
    "INVOICE 2041",
    "Total: 128.50 EUR",
    "Meeting at 10:30",
    "Order #55817",
    "Paris 75001",
    "Due date 2026-12-01",
    "Thank you!",
    "VAT 20%",
    "Hello world",
    "Room 4B",
]
TOTALS = ["128.50", "47.00", "9.99", "310.20", "64.75"]
# Text models that answer from what the readers saw (the coder pack when installed).
ANSWER_MODELS = (
    "smollm2-135m-instruct",
    "smollm2-135m-instruct-fp32",
    "qwen2.5-coder-0.5b-instruct",
)


def _render(text: str, size: int, path: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    width = int(font.getlength(text)) + 2 * size
    img = Image.new("RGB", (width, size * 3), "white")
    ImageDraw.Draw(img).text((size, size), text, fill="black", font=font)
    img.save(path)
    return path


def _invoice(total: str, path: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=32)
    img = Image.new("RGB", (700, 320), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(
        ["ACME Supplies Ltd", "Invoice 2041", "2 x widgets", f"Total: {total} EUR"]
    ):
        draw.text((30, 30 + 70 * i), line, fill="black", font=font)
    img.save(path)
    return path


def bench_vision(repeats: int, progress) -> list[dict]:
    from assistant.catalog.backends import build_adapter
    from assistant.catalog.entries import Catalog
    from assistant.settings import Settings

    settings = Settings.from_env()
    adapter = build_adapter(Catalog.load().get("efficientnet-lite0+rapidocr"), settings)
    started = time.perf_counter()
    adapter.load()
    load_s = time.perf_counter() - started
    top1, top5, label_s = _labels(adapter, repeats, progress)
    with tempfile.TemporaryDirectory() as tmp:
        exact, loose, ocr_s = _ocr(adapter, Path(tmp), progress)
        answered = _invoices(settings, Path(tmp), progress)
    n, total = len(LABELS), len(ocr_s)
    return [
        metric("label top-1 accuracy (scikit-image photos)", top1 / n, "fraction"),
        metric("label top-5 accuracy (scikit-image photos)", top5 / n, "fraction"),
        metric("photos labelled", n, "images"),
        metric("OCR exact match (rendered lines)", exact / total, "fraction"),
        metric("OCR match ignoring spaces", loose / total, "fraction"),
        metric("OCR lines", total, "lines"),
        *(
            metric(f"invoice totals in the chain's answer, {m}", hits / len(TOTALS), "fraction")
            for m, hits in answered.items()
        ),
        metric("classifier s/image (median)", statistics.median(label_s), "s"),
        metric("OCR s/image (median)", statistics.median(ocr_s), "s"),
        metric("load both models", load_s, "s"),
    ]


def _labels(adapter, repeats: int, progress) -> tuple[int, int, list[float]]:
    """(photos whose first label is right, photos with a right label in the top 5, seconds)."""
    import skimage

    from models.vision import load_image

    data = Path(skimage.__file__).parent / "data"
    top1 = top5 = 0
    seconds = []
    for name, accepted in LABELS.items():
        image = load_image(data / name)
        for _ in range(repeats):
            t = time.perf_counter()
            labels = [label for label, _ in adapter.labels(image)]
            seconds.append(time.perf_counter() - t)
        top1 += labels[0] in accepted
        top5 += bool(accepted & set(labels))
        progress(f"  {name}: {', '.join(labels[:3])}")
    return top1, top5, seconds


def _ocr(adapter, tmp: Path, progress) -> tuple[int, int, list[float]]:
    """(lines read exactly, lines right but for spaces, seconds per line) at three sizes."""
    from models.vision import load_image

    exact = loose = 0
    seconds = []
    for size in (24, 36, 48):
        for i, line in enumerate(LINES):
            image = load_image(_render(line, size, tmp / f"l{size}-{i}.png"))
            t = time.perf_counter()
            read = " ".join(adapter.read_text(image))
            seconds.append(time.perf_counter() - t)
            exact += read == line
            loose += read.replace(" ", "") == line.replace(" ", "")
    progress(f"  OCR: {exact}/{len(seconds)} exact, {loose}/{len(seconds)} ignoring spaces")
    return exact, loose, seconds


def _invoices(settings, tmp: Path, progress) -> dict[str, int]:
    """Per text model installed: invoices whose total the whole chain (read, answer) got."""
    from assistant.flow.service import Assistant
    from models.base import Request

    home = tmp / "home"
    home.mkdir()
    share_weights(home, settings.weights_dir)  # prepared once, reused
    assistant = Assistant.from_settings(settings.with_(home=home), progress=lambda m: None)
    answered = {}
    for model in ANSWER_MODELS:
        entry = assistant.catalog.entries.get(model)
        if entry is None or not entry.availability(settings.weights_dir)[0]:
            progress(f"  {model}: not installed, skipped")
            continue
        answered[model] = 0
        for i, amount in enumerate(TOTALS):
            question = Request(
                text="What is the total on this invoice?",
                attachments=(_invoice(amount, tmp / f"invoice{i}.png"),),
                max_new_tokens=48,
                prefer=(("text", model),),
            )
            outcome = assistant.ask(question)
            text = outcome.result.text if outcome.result else outcome.error or ""
            answered[model] += amount in text
            progress(f"  {model}, invoice {amount}: {text[:80]!r}")
    return answered
