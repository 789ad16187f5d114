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
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 40),
    "purple": (140, 50, 170),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES = ("circle", "square", "triangle")
POSITIONS = {
    "left": (9, 16),
    "right": (23, 16),
    "top": (16, 9),
    "bottom": (16, 23),
    "center": (16, 16),
}


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
        positions = (
            rng.sample(["left", "right", "top", "bottom"], 2)
            if n == 2
            else [rng.choice([None, None, *POSITIONS])]
        )
        things = tuple(
            Thing(rng.choice([c for c in COLORS if c != background]), rng.choice(SHAPES), p)
            for p in positions
        )
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


def _flood(mask: np.ndarray, seeds: list[tuple[int, int]]) -> np.ndarray:
    """The pixels of ``mask`` 8-connected to any of ``seeds``."""
    seen = np.zeros_like(mask)
    stack = [s for s in seeds if mask[s]]
    while stack:
        y, x = stack.pop()
        if seen[y, x]:
            continue
        seen[y, x] = True
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ny, nx = y + dy, x + dx
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx]:
                    if not seen[ny, nx]:
                        stack.append((ny, nx))
    return seen


def _blobs(mask: np.ndarray, least: int = 12) -> list[np.ndarray]:
    """The connected parts of ``mask`` of at least ``least`` pixels, holes filled, largest first.

    A generated picture has stray speckles and fringe pixels away from the
    object; one of them would stretch a bounding box and make any shape
    look like a triangle, so each object is measured on its own.
    """
    h, w = mask.shape
    edge = [(y, x) for y in range(h) for x in (0, w - 1)]
    edge += [(y, x) for x in range(w) for y in (0, h - 1)]
    left, parts = mask.copy(), []
    while left.any():
        part = _flood(left, [tuple(np.argwhere(left)[0])])
        left &= ~part
        if part.sum() >= least:
            parts.append(~_flood(~part, edge))  # what the outside cannot reach is the object
    return sorted(parts, key=lambda m: -m.sum())


def _describe(px: np.ndarray, part: np.ndarray, background: str, refine: bool = True) -> dict:
    color = _nearest(np.median(px[part], axis=0))
    if refine:
        # Second pass: the object's edge is where a pixel is nearer its colour
        # than the background's. A fixed threshold takes in the soft fringe
        # around a white-on-black square but not its corners, and calls it round.
        distance = np.abs(px - np.array(COLORS[background])).sum(axis=-1)
        half = np.abs(np.array(COLORS[color]) - np.array(COLORS[background])).sum() / 2
        overlaps = [(int((b & part).sum()), i, b) for i, b in enumerate(_blobs(distance > half))]
        if overlaps and max(overlaps)[0] > 0:
            part = max(overlaps)[2]
    ys, xs = np.nonzero(part)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    fill = part.sum() / (h * w)
    # A square fills its box, a disc ~0.79 of it, a triangle ~0.5.
    shape = "square" if fill > 0.88 else "circle" if fill > 0.66 else "triangle"
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    place = min(POSITIONS, key=lambda k: (POSITIONS[k][0] - cx) ** 2 + (POSITIONS[k][1] - cy) ** 2)
    return {"color": color, "shape": shape, "place": place}


def look(pixels: np.ndarray, most: int = 2) -> dict:
    """What a picture shows: {"background", "things": [{"color", "shape", "place"}, ...]}."""
    px = pixels.astype(np.int32)
    border = np.concatenate([px[0], px[-1], px[:, 0], px[:, -1]])
    background = _nearest(np.median(border, axis=0))
    distance = np.abs(px - np.array(COLORS[background])).sum(axis=-1)
    palette = np.array(list(COLORS.values()))
    nearest = np.abs(px[:, :, None, :] - palette).sum(axis=-1).argmin(axis=-1)
    things = []
    for part in _blobs(distance > 70):  # orange on yellow differs by ~95
        # Two objects that touch make one part: split it by colour when two
        # colours each hold a real share of it.
        counts = np.bincount(nearest[part], minlength=len(palette))
        major = [i for i in np.argsort(-counts) if counts[i] >= max(12, part.sum() / 4)]
        if len(major) < 2:
            things.append((part.sum(), _describe(px, part, background)))
            continue
        for i in major:
            sub = _blobs(part & (nearest == i))
            if sub:
                things.append((sub[0].sum(), _describe(px, sub[0], background, refine=False)))
    things.sort(key=lambda t: -t[0])
    return {"background": background, "things": [t[1] for t in things[:most]]}


def judge(pixels: np.ndarray) -> dict:
    """A single-object picture: {"background", "color", "shape"} (None where there is no object)."""
    seen = look(pixels, most=1)
    thing = seen["things"][0] if seen["things"] else {"color": None, "shape": None}
    return {"background": seen["background"], "color": thing["color"], "shape": thing["shape"]}


def follows(seen: dict, scene: Scene) -> bool:
    """Whether a looked-at picture shows the whole scene: background, and every thing
    in its colour and shape, at its place when the caption gives one."""
    if seen["background"] != scene.background or len(seen["things"]) < len(scene.things):
        return False

    def fits(want: Thing, got: dict) -> bool:
        return (got["color"], got["shape"]) == (want.color, want.shape) and (
            want.position is None or got["place"] == want.position
        )

    wanted, got = scene.things, seen["things"][: len(scene.things)]
    return all(map(fits, wanted, got)) or (
        len(wanted) == 2 and fits(wanted[0], got[1]) and fits(wanted[1], got[0])
    )


def agrees(seen: dict, scene: Scene) -> dict:
    """Per field, whether a judged single-object picture matches the scene's caption."""
    want = scene.things[0]
    return {
        "background": seen["background"] == scene.background,
        "color": seen["color"] == want.color,
        "shape": seen["shape"] == want.shape,
        "all": (seen["background"], seen["color"], seen["shape"])
        == (scene.background, want.color, want.shape),
    }


def degrade(pixels: np.ndarray, rng: random.Random) -> np.ndarray:
    """A rendered picture made to look generated: soft edges, grain, a few stray speckles."""
    px = pixels.astype(np.float32)
    padded = np.pad(px, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(padded[dy : dy + SIZE, dx : dx + SIZE] for dy in range(3) for dx in range(3)) / 9
    grain = np.random.default_rng(rng.randrange(2**32)).normal(0, 10, px.shape)
    noisy = 0.5 * px + 0.5 * blur + grain
    for _ in range(4):
        noisy[rng.randrange(SIZE), rng.randrange(SIZE)] = COLORS[rng.choice(list(COLORS))]
    return noisy.clip(0, 255).astype(np.uint8)


def kind(scene: Scene) -> str:
    """'single' (one object, place unsaid), 'placed' (one object at a place) or 'two'."""
    if len(scene.things) == 2:
        return "two"
    return "placed" if scene.things[0].position else "single"


def test_scenes(which: str, per_combo: int = 4, seed: int = 0) -> list[Scene]:
    """Scenes made only of held-out (background, colour, shape) combinations.

    'two' pairs held-out combinations that share a background, at opposite
    places (left/right or top/bottom) so the two objects do not overlap.
    """
    rng = random.Random(seed)
    combos = sorted(held_out())
    out = []
    for b, c, s in combos:
        for _ in range(per_combo):
            if which == "single":
                out.append(Scene(b, (Thing(c, s),)))
            elif which == "placed":
                out.append(Scene(b, (Thing(c, s, rng.choice(list(POSITIONS))),)))
            else:
                mates = [(c2, s2) for b2, c2, s2 in combos if b2 == b and (c2, s2) != (c, s)]
                if mates:
                    c2, s2 = rng.choice(mates)
                    a, z = rng.choice([("left", "right"), ("top", "bottom")])
                    out.append(Scene(b, (Thing(c, s, a), Thing(c2, s2, z))))
    return out


def check_judge(
    n: int = 200, seed: int = 1, degraded: bool = False, which: str = "single"
) -> tuple[float, float]:
    """(fully right on rendered scenes, fully right against a mismatched caption).

    ``degraded`` checks it on pictures with the flaws generated ones have;
    ``which`` picks the kind of scene (see ``kind``).
    """
    rng = random.Random(seed)

    def one() -> Scene:
        while kind(scene := random_scene(rng, set())) != which:
            pass
        return scene

    right = wrong = 0
    for _ in range(n):
        scene = one()
        pixels = render(scene, rng)
        seen = look(degrade(pixels, rng) if degraded else pixels)
        right += follows(seen, scene)
        wrong += follows(seen, one())
    return right / n, wrong / n
