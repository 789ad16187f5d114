"""The demo image model's world: a grammar of simple scenes, their pictures, and a judge.

A scene is coloured shapes on a coloured background, 32×32 pixels. The
grammar is small on purpose: it is all the demo diffusion model can draw,
and the model card says so. ``judge`` reads a picture back (background
colour, then the object's colour and shape) so prompt-following can be
measured without a person looking; ``check_judge`` shows it is right on
rendered scenes and wrong on mismatched ones before anyone trusts it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

SIZE = 32
COLORS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 220),
    "yellow": (240, 220, 40), "purple": (140, 50, 170), "orange": (245, 140, 30),
    "white": (245, 245, 245), "black": (20, 20, 20),
}  # fmt: skip
SHAPES = ("circle", "square", "triangle")
POSITIONS = {"left": (9, 16), "right": (23, 16), "top": (16, 9), "bottom": (16, 23),
             "center": (16, 16)}  # fmt: skip


@dataclass(frozen=True)
class Thing:
    color: str
    shape: str
    position: str | None = None  # None: anywhere near the middle, not said in the caption


@dataclass(frozen=True)
class Scene:
    background: str
    things: tuple[Thing, ...]

    @property
    def caption(self) -> str:
        parts = []
        for t in self.things:
            where = f" at the {t.position}" if t.position else ""
            parts.append(f"a {t.color} {t.shape}{where}")
        return f"{' and '.join(parts)} on a {self.background} background"


def held_out(seed: int = 7, share: float = 0.15) -> set[tuple[str, str, str]]:
    """(background, colour, shape) combinations training never sees: the judge's test set."""
    combos = [(b, c, s) for b in COLORS for c in COLORS if c != b for s in SHAPES]
    rng = random.Random(seed)
    return set(rng.sample(combos, round(len(combos) * share)))


def random_scene(rng: random.Random, exclude: set[tuple[str, str, str]]) -> Scene:
    """A training scene: one object (70%) or two, never a held-out combination."""
    while True:
        background = rng.choice(list(COLORS))
        n = 1 if rng.random() < 0.7 else 2
        positions = rng.sample(["left", "right", "top", "bottom"], 2) if n == 2 else [
            rng.choice([None, None, *POSITIONS])]  # fmt: skip
        things = tuple(Thing(rng.choice([c for c in COLORS if c != background]),
                             rng.choice(SHAPES), p) for p in positions)  # fmt: skip
        if not any((background, t.color, t.shape) in exclude for t in things):
            return Scene(background, things)


def render(scene: Scene, rng: random.Random | None = None) -> np.ndarray:
    """The scene as a uint8 HxWx3 array; sizes and offsets jitter a little."""
    from PIL import Image, ImageDraw

    rng = rng or random.Random(0)
    img = Image.new("RGB", (SIZE, SIZE), COLORS[scene.background])
    draw = ImageDraw.Draw(img)
    for thing in scene.things:
        cx, cy = POSITIONS[thing.position or "center"]
        jitter = 1 if thing.position or len(scene.things) > 1 else 3
        cx, cy = cx + rng.randint(-jitter, jitter), cy + rng.randint(-jitter, jitter)
        r = rng.randint(5, 7) if len(scene.things) > 1 or thing.position else rng.randint(6, 9)
        box = (cx - r, cy - r, cx + r, cy + r)
        color = COLORS[thing.color]
        if thing.shape == "circle":
            draw.ellipse(box, fill=color)
        elif thing.shape == "square":
            draw.rectangle(box, fill=color)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    return np.asarray(img)


def _nearest(rgb) -> str:
    return min(COLORS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLORS[c], rgb, strict=True)))


def judge(pixels: np.ndarray) -> dict:
    """What one picture shows: {"background", "color", "shape"} (object fields None if none)."""
    px = pixels.astype(np.int32)
    border = np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]])
    background = _nearest(np.median(border, axis=0))
    distance = np.abs(px - np.array(COLORS[background])).sum(axis=-1)
    mask = distance > 70  # orange on yellow differs by ~95
    if mask.sum() < 12:
        return {"background": background, "color": None, "shape": None}
    color = _nearest(np.median(px[mask], axis=0))
    ys, xs = np.nonzero(mask)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    fill = mask.sum() / (h * w)
    # A square fills its box, a disc ~0.79 of it, a triangle ~0.5.
    shape = "square" if fill > 0.88 else "circle" if fill > 0.66 else "triangle"
    return {"background": background, "color": color, "shape": shape}


def agrees(seen: dict, scene: Scene) -> dict:
    """Per field, whether a judged single-object picture matches the scene's caption."""
    want = scene.things[0]
    return {"background": seen["background"] == scene.background,
            "color": seen["color"] == want.color, "shape": seen["shape"] == want.shape,
            "all": (seen["background"], seen["color"], seen["shape"])
            == (scene.background, want.color, want.shape)}  # fmt: skip


def check_judge(n: int = 200, seed: int = 1) -> tuple[float, float]:
    """(fully right on rendered scenes, fully right against a mismatched caption)."""
    rng = random.Random(seed)
    right = wrong = 0
    for _ in range(n):
        scene = random_scene(rng, set())
        scene = Scene(scene.background, scene.things[:1])
        right += agrees(judge(render(scene, rng)), scene)["all"]
        other = random_scene(rng, set())
        wrong += agrees(judge(render(scene, rng)), Scene(other.background, other.things[:1]))["all"]
    return right / n, wrong / n
