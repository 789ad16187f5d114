"""The inputs of `bench answers` and how its replies are checked: the sets in
bench/data/answers/, pictures drawn with Pillow, voice memos read by
espeak-ng, and the list of prompt scaffolding a person must never see."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

DATA = Path(__file__).with_name("data") / "answers"

# Prompt scaffolding a person must never see (an independent list: not grounding.py's).
SCAFFOLD = [
    re.compile(p, re.I | re.M)
    for p in (
        r"<<<",
        r">>>",
        r"\bexcerpt \[\d",
        r"^\s*question\s*:",
        r"answer with citations",
        r"^\s*excerpts?\s*:",
        r"<\|im_(start|end)\|>",
        r"<\|endoftext\|>",
        r"^\s{0,3}#{1,6}\s",
        r"not instructions",
        r"quoted data",
        r"^\s*(facts|context)\s*:\s*$",
    )
]


def scaffolding(text: str, n_citations: int) -> list[str]:
    """What of the prompt's scaffolding shows in ``text`` (empty: nothing)."""
    found = [p.pattern for p in SCAFFOLD if p.search(text)]
    bad = [n for n in re.findall(r"\[(\d+)\]", text) if not 1 <= int(n) <= n_citations]
    return found + [f"[{n}] of {n_citations}" for n in bad]


def _load(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def _has(text: str, expected: list[str]) -> bool:
    low = text.lower()
    # A plural counts ("notice" in "notices"); a longer number does not ("60" in "600").
    return any(
        re.search(rf"(?<![\w.]){re.escape(e.lower())}(?:s|es)?(?![\w])", low) for e in expected
    )


def _picture(lines: list[str], path: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=30)
    width = max(int(font.getlength(line)) for line in lines) + 80
    img = Image.new("RGB", (max(width, 420), 60 + 56 * len(lines)), "white")
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((40, 30 + 56 * i), line, fill="black", font=font)
    img.save(path)
    return path


def _memo(text: str, path: Path) -> Path:
    raw = path.with_suffix(".raw.wav")
    for cmd in (
        ["espeak-ng", "-w", str(raw), text],
        ["sox", str(raw), "-r", "16000", "-c", "1", str(path)],
    ):
        try:
            subprocess.run(cmd, check=True, capture_output=True)
        except FileNotFoundError:
            from models.base import ModelUnavailable

            raise ModelUnavailable(
                "bench answers needs espeak-ng and sox for its voice memos: "
                "apt-get install -y espeak-ng sox"
            ) from None
    raw.unlink()
    return path
