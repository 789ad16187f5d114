"""What the two picture adapters share: the controls read from a request, and the saved PNG.

models/image_demo.py (the demo model trained here) and
models/image_diffusers.py (hub pipelines) bound the same controls the same
way, and save every picture with the recipe that makes it again.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from models.base import Result, Usage


def controls(options: dict, steps: float, guidance: float) -> tuple[int, float, int]:
    """(steps, guidance, seed) from a request's options, the given values where it has none."""
    steps = int(min(100, max(1, float(options.get("steps", steps)))))
    guidance = float(min(20.0, max(0.0, float(options.get("guidance", guidance)))))
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
    return Result(text=text, files=(path,), usage=Usage(0, 1, "images"), notes=tuple(notes),
                  recipe=tuple((k, str(v)) for k, v in recipe.items()))  # fmt: skip
