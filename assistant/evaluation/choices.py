""" "Use this model for this task": a person's choice, kept in ASSISTANT_HOME, with its reason.

The choice is the task's default for every later request (a per-request
pick or --model still wins), it outlives restarts, and the route card
quotes why it was made ("best on your eval 'facts': 0.92 at $0.00004 per
answer"). It wins over ASSISTANT_TEXT_MODEL and the like: those are an
operator's starting point, a choice is what the measurements said.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from models.base import BadInput


def _path(assistant) -> Path:
    return assistant.settings.home / "choices.json"


def because(dataset: str, metric: str, summary: dict) -> str:
    n = max(summary["n"], 1)
    return (
        f"chosen after your eval '{dataset}': {metric} {summary['score']:.2f} at "
        f"${summary['usd_local'] / n:.5f} per answer here"
    )


def saved(assistant) -> dict[str, dict]:
    path = _path(assistant)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}  # a damaged file is no choice; the next choice rewrites it
    return {t: c for t, c in data.items() if isinstance(c, dict) and "model" in c}


def apply(assistant) -> None:
    """Make the saved choices the router's defaults (at start, and after each choice)."""
    for task, choice in saved(assistant).items():
        entry = assistant.catalog.entries.get(choice["model"])
        if entry is not None and task in entry.tasks:
            assistant.router.preferred[task] = entry.id
            assistant.router.because[task] = choice.get("why", "your choice")


def choose(assistant, task: str, model: str, why: str) -> None:
    entry = assistant.catalog.get(model)
    if task not in entry.tasks:
        raise BadInput(
            f"'{model}' does not serve {task} requests; it serves {', '.join(entry.tasks)}."
        )
    data = saved(assistant)
    data[task] = {"model": model, "why": why}
    path = _path(assistant)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    apply(assistant)
