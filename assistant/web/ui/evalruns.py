"""Two finished eval runs side by side, item by item (the Evaluate tab's lower panel).

Pick an earlier run (A) and a later one (B): the panel says how each
model's score moved and lists the items whose score changed first, with
both outputs, so a person sees *what* a fine-tune, a prompt edit or another
model changed, not only the mean.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from assistant.evaluation import runs
from assistant.flow.service import Assistant
from models.base import AssistantError

ITEM_COLUMNS = [
    "id",
    "A model",
    "B model",
    "score A",
    "score B",
    "Δ",
    "changed",
    "A said",
    "B said",
]


def run_choices(assistant: Assistant) -> list[tuple[str, str]]:
    """(label, run id) of finished runs, newest first."""
    found = []
    for r in runs.saved(assistant.settings.home):
        models = ", ".join(r["models"])
        found.append(
            (f"{r['run'][:8]} · {Path(r['dataset']).name} · {r['metric']} · {models}", r["run"])
        )
    return found


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _delta(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def diff_view(diff: dict) -> tuple[str, pd.DataFrame]:
    """(a summary in Markdown, the items table with changed items first)."""
    lines = [
        f"- **{m['a']}** (A) → **{m['b']}** (B): {_score(m['score_a'])} → "
        f"{_score(m['score_b'])} (Δ {_delta(m['delta'])})"
        for m in diff["models"]
    ]
    better = "higher" if diff["higher_is_better"] else "lower"
    summary = (
        f"Run `{diff['a']['run'][:8]}` (A) against `{diff['b']['run'][:8]}` (B), metric "
        f"**{diff['a']['metric']}** ({better} is better): **{diff['changed']} of "
        f"{len(diff['items'])}** items changed score.\n\n" + "\n".join(lines)
    )
    ordered = sorted(diff["items"], key=lambda i: not i["changed"])
    rows = [
        [
            i["id"],
            i["a"],
            i["b"],
            _score(i["score_a"]),
            _score(i["score_b"]),
            _delta(i["delta"]),
            "yes" if i["changed"] else ("wording" if i["output_changed"] else ""),
            (i["output_a"] or "–")[:160],
            (i["output_b"] or "–")[:160],
        ]
        for i in ordered
    ]
    return summary, pd.DataFrame(rows, columns=ITEM_COLUMNS)


def build_runs_side_by_side(assistant: Assistant, tab: gr.Tab) -> tuple:
    """The panel; returns (fn, inputs, outputs) that refresh its run pickers after a run."""
    with gr.Accordion("Two runs side by side, item by item", open=False, elem_id="runs-panel"):
        with gr.Row():
            first = gr.Dropdown([], label="Run A (earlier)", scale=3, elem_id="runs-a")
            second = gr.Dropdown([], label="Run B (later)", scale=3, elem_id="runs-b")
            show = gr.Button("Show what changed", scale=1, elem_id="runs-go")
        summary = gr.Markdown(elem_id="runs-summary")
        table = gr.Dataframe(interactive=False, wrap=True, visible=False, elem_id="runs-items")

    def refresh():
        found = run_choices(assistant)
        a = found[1][1] if len(found) > 1 else None
        b = found[0][1] if found else None
        return gr.Dropdown(choices=found, value=a), gr.Dropdown(choices=found, value=b)

    def compare(a, b):
        if not a or not b:
            return "Pick two finished runs (run an evaluation twice first).", gr.skip()
        try:
            home = assistant.settings.home
            text, frame = diff_view(runs.side_by_side(runs.load(home, a), runs.load(home, b)))
        except AssistantError as err:
            return f"⚠️ {err}", gr.Dataframe(visible=False)
        return text, gr.Dataframe(frame, visible=True)

    tab.select(refresh, None, [first, second], api_name=False)
    show.click(compare, [first, second], [summary, table], api_name=False)
    return refresh, None, [first, second]
