"""Saved eval runs, and two of them side by side, item by item.

A run's items are appended to ASSISTANT_HOME/evals/<run>.jsonl as they
finish (engine.py); when the run is done its whole report is written beside
them as <run>.json. Two finished runs can then be put side by side: which
items changed, and by how much, e.g. a model before and after fine-tuning,
or the same model after a prompt or dataset edit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from models.base import BadInput


def folder(home: Path) -> Path:
    path = home / "evals"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_meta(items_path: Path, report: dict) -> None:
    """The finished report beside its items, written whole (a crash leaves the old one)."""
    final = items_path.with_suffix(".json")
    partial = final.with_suffix(".json.part")
    partial.write_text(json.dumps({**report, "finished": time.time()}, ensure_ascii=False))
    partial.replace(final)


def saved(home: Path) -> list[dict]:
    """Finished runs, newest first: run id, dataset, metric, models, when."""
    found = []
    for path in folder(home).glob("*.json"):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        found.append(
            {
                "run": report["run"],
                "dataset": report["dataset"],
                "metric": report["metric"],
                "models": [m["model"] for m in report["models"]],
                "finished": report.get("finished", 0.0),
            }
        )
    return sorted(found, key=lambda r: -r["finished"])


def load(home: Path, run: str) -> dict:
    path = folder(home) / f"{run}.json"
    if not run.isalnum() or not path.is_file():
        known = ", ".join(r["run"] for r in saved(home)[:5]) or "none yet"
        raise BadInput(f"No finished eval run '{run}'. Recent runs: {known}.")
    return json.loads(path.read_text(encoding="utf-8"))


def _pairs(a: dict, b: dict) -> list[tuple[str, str]]:
    """Models to set side by side: the same model in both runs, else in the order named."""
    left = [m["model"] for m in a["models"]]
    right = [m["model"] for m in b["models"]]
    common = [m for m in left if m in right]
    return [(m, m) for m in common] if common else list(zip(left, right, strict=False))


def side_by_side(a: dict, b: dict) -> dict:
    """Run ``b`` against run ``a``: per model pair the score delta, per item what changed."""
    if (a["metric"], a.get("judge", {}).get("model")) != (
        b["metric"],
        b.get("judge", {}).get("model"),
    ):
        raise BadInput(
            f"Run {a['run']} is scored with {a['metric']} and run {b['run']} with "
            f"{b['metric']}: side by side, runs must be scored the same way."
        )
    pairs = _pairs(a, b)
    summary_a = {m["model"]: m for m in a["models"]}
    summary_b = {m["model"]: m for m in b["models"]}
    items_a = {(i["id"], i["model"]): i for i in a["items"]}
    items_b = {(i["id"], i["model"]): i for i in b["items"]}
    models, items = [], []
    for model_a, model_b in pairs:
        score_a, score_b = summary_a[model_a]["score"], summary_b[model_b]["score"]
        models.append(
            {"a": model_a, "b": model_b, "score_a": score_a, "score_b": score_b}
            | {"delta": _delta(score_a, score_b)}
        )
        ids = dict.fromkeys([i for i, m in items_a if m == model_a])
        ids.update(dict.fromkeys(i for i, m in items_b if m == model_b))
        for item_id in ids:
            items.append(
                _item(
                    item_id,
                    items_a.get((item_id, model_a)),
                    items_b.get((item_id, model_b)),
                    model_a,
                    model_b,
                )
            )
    return {
        "a": {"run": a["run"], "dataset": a["dataset"], "metric": a["metric"]},
        "b": {"run": b["run"], "dataset": b["dataset"], "metric": b["metric"]},
        "higher_is_better": a["higher_is_better"],
        "models": models,
        "items": items,
        "changed": sum(i["changed"] for i in items),
    }


def _item(item_id: str, a: dict | None, b: dict | None, model_a: str, model_b: str) -> dict:
    score_a = a["score"] if a else None
    score_b = b["score"] if b else None
    output_a = a["output"] if a else None
    output_b = b["output"] if b else None
    return {
        "id": item_id,
        "a": model_a,
        "b": model_b,
        "score_a": score_a,
        "score_b": score_b,
        "delta": _delta(score_a, score_b),
        # "changed": the score moved, or the item is in one run only. A new
        # wording with the same score is shown (output_changed) but not counted.
        "changed": a is None or b is None or score_a != score_b,
        "output_changed": output_a != output_b,
        "output_a": output_a,
        "output_b": output_b,
    }


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 4)
