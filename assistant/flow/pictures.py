""" "Same again with 8 steps": redraw this session's last picture with that change.

The last picture's recipe (seed, steps, guidance, size) is in its ledger
row; a short command changes what it names and keeps the rest.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from assistant.flow.context import Context
from models.base import PictureOptions, Request

# "same again", "again with 8 steps", "redo it with guidance 2": the last picture's recipe.
AGAIN = re.compile(r"^\s*(same( again)?|again|redo( it)?|once more|draw it again)\b", re.I)


def as_redraw(a: Context, request: Request) -> Request:
    """The request as a redraw of the session's last picture, or unchanged when it is not one."""
    text = request.text
    # Short commands only: "again, what is the capital of France?" is a question.
    if request.attachments or request.task or len(text) > 80 or "?" in text:
        return request
    if not AGAIN.search(text):
        return request
    for row in a.ledger.rows(request.session_id, limit=50):
        recipe = json.loads(row["extra"] or "{}").get("recipe")
        if row["status"] == "ok" and recipe and row["task"] == "image_generation":
            prompt, options = again_options(text, recipe)
            return replace(request, text=prompt, options=options, task="image_generation")
    return request


def again_options(text: str, recipe: dict) -> tuple[str, PictureOptions]:
    """(prompt, options) of the last picture, with what ``text`` changes in it."""
    options = {
        "seed": float(recipe["seed"]),
        "steps": float(recipe["steps"]),
        "guidance": float(recipe["guidance"]),
    }
    if recipe.get("negative"):
        options["negative"] = recipe["negative"]
    if "x" in recipe.get("size", ""):  # "512x768": the hub models' recipes carry it
        width, height = recipe["size"].split("x")
        options.update(width=float(width), height=float(height))
    for key, pattern in (
        ("steps", r"(\d+)\s*steps?"),
        ("guidance", r"guidance\D{0,4}([\d.]+)"),
        ("seed", r"seed\D{0,4}(\d+)"),
    ):
        if found := re.search(pattern, text, re.I):
            options[key] = float(found.group(1))
    if re.search(r"\b(new|another|different) seed\b", text, re.I):
        options["seed"] = -1.0
    return recipe["prompt"], PictureOptions(**options)
