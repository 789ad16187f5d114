"""The demo text-to-image model: a small diffusers UNet trained in this project.

It draws the scene grammar of training/scenes.py — one or two coloured
circles, squares or triangles on a coloured background, 32×32 — and
nothing else; its model card (models/demo_diffusion/README.md) says so.
It is offered because no real text-to-image weights ship on PyPI; with a
hub model installed, that one is the default.

It runs through the same adapter as the hub models (DiffusersImages): its
folder is a diffusers pipeline (models/demo_pipeline.py) whose text
encoder is the packed MiniLM. What is its own is below: where its weights
and text encoder come from, and the note for a prompt outside its grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from models.demo_facts import GUIDANCE
from models.image_diffusers import DiffusersImages

SIZE = 32
WORDS = {
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "orange",
    "white",
    "black",
    "circle",
    "square",
    "triangle",
    "background",
}
CAN_DRAW = (
    "This is the demo model trained in this project: it draws only one or two red, green, "
    "blue, yellow, purple, orange, white or black circles, squares or triangles on a coloured "
    'background, e.g. "a red circle on a blue background". For real pictures install a hub '
    "model on a machine with internet and a GPU (sd-turbo; see the README)."
)


class DemoSceneDiffusion(DiffusersImages):
    tasks = ("image_generation",)  # it draws from words only: no edits
    enlarge = 8  # 32×32 drawn, saved 256×256: a speck in the chat otherwise

    def __init__(
        self,
        folder: Path,
        text_folder: Callable[[], Path],
        out_dir: Path,
        steps: int = 25,
        guidance: float = GUIDANCE,
        device: str = "cpu",
    ):
        # The CPU by default: 7M parameters draw in well under a second there,
        # and a GPU is better left to the models that need one.
        super().__init__(
            str(folder),
            "demo-scenes",
            out_dir,
            device,
            defaults={"steps": steps, "guidance": guidance, "size": SIZE},
        )
        self.text_folder = text_folder  # finds the packed MiniLM when load() runs

    def _pipeline(self, dtype):
        from models.demo_pipeline import load

        return load(Path(self.source), self.text_folder(), dtype)

    def prompt_notes(self, prompt: str) -> list[str]:
        words = prompt.lower()
        if not set(re.findall(r"[a-z]+", words)) & WORDS or "on a" not in words:
            return [CAN_DRAW]
        return []
