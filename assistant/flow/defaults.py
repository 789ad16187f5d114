"""Defaults that depend on this machine: the chat model `bench text` measured fastest
here, and a picture model only where there is a GPU to draw with."""

from __future__ import annotations

import json
import os

from assistant.catalog.entries import Catalog
from assistant.settings import Settings
from models.base import pick_device

# Written by `bench text` in ASSISTANT_HOME: which runtime won on this CPU.
BENCH_TEXT_FILE = "bench-text.json"


def measured_text_default(settings: Settings, catalog: Catalog) -> str | None:
    """The chat model `bench text` found fastest here, if it ran and that model is usable.

    The catalog's default serves until the bench has run on this machine:
    which runtime wins depends on the CPU (AVX-512, cores, memory).
    """
    try:
        measured = json.loads((settings.home / BENCH_TEXT_FILE).read_text())
        found = measured.get("text_model")
    except (OSError, ValueError, AttributeError):
        return None
    if bool(measured.get("llama_spin")) != settings.llama_spin:
        return None  # measured under the other ASSISTANT_LLAMA_SPIN: its speeds do not hold
    entry = catalog.entries.get(found) if isinstance(found, str) else None
    if entry is None or not entry.availability(settings.weights_dir)[0]:
        return None
    return entry.id


def has_cuda(device: str) -> bool:
    if device == "auto" and os.environ.get("SPACES_ZERO_GPU"):
        return True  # a GPU is lent per call there, and CUDA must not be touched at start
    return pick_device(device).startswith("cuda")
