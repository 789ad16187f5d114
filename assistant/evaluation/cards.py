"""Model cards: what each catalog model is, and what it measured on this machine.

A card joins the catalog's row (license, size, where it runs, whether it
can run now) with evidence gathered here: the grounded-answer figures of
`bench answers` (routing/router_data/answers_measured.json), the
leaderboard from blind votes, finished eval runs, and the ledger's medians
of time and cost per request. Nothing is loaded or downloaded to build one.
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.evaluation import runs
from assistant.evaluation.votes import Votes, leaderboard, measured

ANSWERS = Path(__file__).resolve().parents[1] / "routing" / "router_data" / "answers_measured.json"

WHAT = {
    "text": "a chat model: answers in text, and ends every chain",
    "asr": "speech recognition: turns a recording into text",
    "image": "picture generation from a prompt (and edits of a picture where it can)",
    "vision": "reads pictures: what is in one, and the text it holds",
    "embed": "embeddings for searching your documents",
    "tts": "speech synthesis: reads replies aloud",
    "rerank": "reorders retrieved passages by how well they answer",
}
# The catalog does not record languages yet; what the model's own card says,
# keyed by the start of the catalog id. "not stated" where nobody checked.
LANGUAGES = {
    "smollm2": "English",
    "qwen2.5": "multilingual (29+ languages, per Qwen's card)",
    "gpt-4o": "multilingual",
    "whisper-tiny.en": "English only",
    "whisper": "multilingual (99 languages, per Whisper's card)",
    "all-minilm": "English",
    "ms-marco": "English",
    "piper-joe": "English (US voice)",
    "efficientnet": "labels in English; RapidOCR reads Latin and Chinese text",
    "smolvlm": "English",
    "blip": "English",
}


def languages(model_id: str) -> str:
    # Longest prefix first: "whisper-tiny.en" before "whisper".
    for prefix in sorted(LANGUAGES, key=len, reverse=True):
        if model_id.startswith(prefix):
            return LANGUAGES[prefix]
    return "not stated"


def _answers() -> dict:
    try:
        return json.loads(ANSWERS.read_text(encoding="utf-8")).get("models", {})
    except (OSError, ValueError):
        return {}


def _evals(home: Path) -> dict[str, list[dict]]:
    """Per model, its scores in finished eval runs (newest first)."""
    found: dict[str, list[dict]] = {}
    for run in runs.saved(home):
        report = runs.load(home, run["run"])
        for m in report["models"]:
            found.setdefault(m["model"], []).append(
                {
                    "run": run["run"],
                    "dataset": Path(report["dataset"]).name,
                    "metric": report["metric"],
                    "score": m["score"],
                    "n": m["n"],
                }
            )
    return found


def cards(catalog, settings, ledger=None, votes: Votes | None = None, probe=False) -> list[dict]:
    """One card per catalog model: the catalog's row, what it is, and what it measured here.

    ``ledger`` and ``votes`` are left out where none exist yet (a listing
    creates no database); ``probe`` asks remote endpoints first, as `models --check`.
    """
    rows = catalog.rows(settings.weights_dir, probe=probe)
    answers = _answers()
    speed = measured(ledger) if ledger is not None else {}
    board = leaderboard(votes, ledger) if votes is not None and ledger is not None else []
    evals = _evals(settings.home) if (settings.home / "evals").is_dir() else {}
    out = []
    for row in rows:
        entry = catalog.get(row["id"])
        model = row["id"]
        out.append(
            {
                **row,
                "what": WHAT.get(entry.family, entry.family),
                "open": not row["license"].startswith("proprietary"),
                "languages": languages(model),
                "context_window": entry.context_window or None,
                "cloud_prices": entry.prices,
                "quality": {
                    "answers": answers.get(model),
                    "leaderboard": [
                        {k: r[k] for k in ("task", "rank", "rating", "low", "high", "votes")}
                        for r in board
                        if r["model"] == model
                    ],
                    "evals": evals.get(model, [])[:5],
                },
                "measured": {
                    task: stats for (m, task), stats in sorted(speed.items()) if m == model
                },
            }
        )
    return out


def quality_line(card: dict) -> str:
    """The card's measured quality in a few words, for a table cell or a terminal line."""
    parts = []
    answers = card["quality"]["answers"]
    if answers:
        parts.append(f"grounded {answers['grounded']:.2f} (bench answers)")
    for r in card["quality"]["leaderboard"]:
        parts.append(f"#{r['rank']} {r['task']} rating {r['rating']} ({r['votes']} votes)")
    for e in card["quality"]["evals"][:2]:
        score = "–" if e["score"] is None else f"{e['score']:.2f}"
        parts.append(f"{e['metric']} {score} on {e['dataset']}")
    return "; ".join(parts) or "not measured yet"


def speed_line(card: dict) -> str:
    """Median time and cost per request on this machine, per task, from the ledger."""
    parts = [
        f"{task}: {s['run_s_p50']:.2f} s, ${s['usd_local_p50']:.6f} (median of {s['requests']})"
        for task, s in card["measured"].items()
    ]
    return "; ".join(parts) or "no requests yet"
