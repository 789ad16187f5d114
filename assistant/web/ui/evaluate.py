"""The Evaluate tab: a dataset of your own examples, run on several models, scored.

The run happens in a worker thread (assistant/evaluation/engine.py) while
this generator shows its progress; the results table, the items side by
side, and a scatter of score against cost with the Pareto front follow.
"Use this model" makes the chosen model the task's default, and the route
card then says which eval chose it.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import gradio as gr
import pandas as pd

from assistant.evaluation import choices
from assistant.evaluation.engine import evaluate
from assistant.evaluation.metrics import METRICS
from assistant.evaluation.rating import pareto
from assistant.flow.service import Assistant
from assistant.web.access import check_files
from assistant.web.ui.compare import models_here
from models.base import AssistantError, BadInput

EXAMPLES = Path(__file__).resolve().parents[2] / "evaluation" / "examples"
SHIPPED = {
    "facts — 24 short factual questions (text)": EXAMPLES / "facts.jsonl",
    "speech — 5 spoken sentences with their text (speech)": EXAMPLES / "speech.jsonl",
}
UPLOADED = "my own file (upload it)"
AUTO = "auto (contains for text, wer for speech)"
RESULT_COLUMNS = [
    "model",
    "score",
    "n",
    "failed",
    "p50 latency s",
    "$ here (run)",
    "$ cloud (same work)",
    "Pareto front",
]


def frames(report: dict) -> tuple[list[list], list[list], pd.DataFrame]:
    """(results rows, item rows, scatter frame) of an eval report."""
    front = pareto(
        [(m["model"], m["score"], m["usd_local"]) for m in report["models"]],
        report["higher_is_better"],
    )
    results = []
    for m in report["models"]:
        cloud = f"${m['usd_cloud']:.5f}" if m["usd_cloud"] is not None else "–"
        results.append(
            [
                m["model"],
                round(m["score"], 3),
                m["n"],
                m["failed"],
                m["latency_p50_s"],
                f"${m['usd_local']:.5f}",
                cloud,
                "★" if m["model"] in front else "",
            ]
        )
    by_id: dict[str, dict] = {}
    for item in report["items"]:
        row = by_id.setdefault(item["id"], {"id": item["id"]})
        score = "failed" if item["score"] is None else f"{item['score']:.2f}"
        row[item["model"]] = f"[{score}] {item['output'][:160]}"
    models = [m["model"] for m in report["models"]]
    items = [[r["id"], *(r.get(m, "") for m in models)] for r in by_id.values()]
    scatter = pd.DataFrame(
        {
            "model": [m["model"] for m in report["models"]],
            "score": [m["score"] for m in report["models"]],
            "usd per item here": [m["usd_local"] / max(m["n"], 1) for m in report["models"]],
            "p50 latency s": [m["latency_p50_s"] for m in report["models"]],
            "front": [
                "Pareto front" if m["model"] in front else "dominated" for m in report["models"]
            ],
        }
    )
    return results, items, scatter


def build_evaluate_tab(assistant: Assistant, tab: gr.Tab) -> None:
    built = models_here(assistant)
    gr.Markdown(
        "Score models on **your own examples**: a JSONL (or CSV) file, one example a "
        'line: `{"id", "input", "attachments", "expected"}`. Each item runs through '
        "the real router and ledger with the model pinned; a run cut short resumes "
        "where it stopped."
    )
    with gr.Row():
        dataset = gr.Dropdown(
            [*SHIPPED, UPLOADED],
            value=next(iter(SHIPPED)),
            label="Dataset",
            scale=2,
            elem_id="eval-dataset",
        )
        upload = gr.File(
            label="Your dataset (.jsonl or .csv)",
            file_types=[".jsonl", ".csv"],
            scale=1,
            height=110,
            elem_id="eval-upload",
        )
    with gr.Row():
        models = gr.Dropdown(
            built,
            multiselect=True,
            label="Models",
            scale=3,
            value=_defaults(assistant),
            elem_id="eval-models",
        )
        metric = gr.Dropdown([AUTO, *METRICS], value=AUTO, label="Metric", scale=2)
        go = gr.Button("Run the evaluation", variant="primary", scale=1, elem_id="eval-go")
    status = gr.Markdown(elem_id="eval-status")
    # Shown once a run has finished: empty tables and plots only puzzle a newcomer.
    with gr.Column(visible=False) as area:
        results = gr.Dataframe(headers=RESULT_COLUMNS, interactive=False, elem_id="eval-results")
        scatter = gr.ScatterPlot(
            x="usd per item here",
            y="score",
            color="front",
            title="Score against cost per item (★ the Pareto front)",
            tooltip=["model", "score", "usd per item here", "p50 latency s"],
            elem_id="eval-scatter",
            height=320,
        )
        items = gr.Dataframe(
            label="Items side by side ([score] output)",
            interactive=False,
            wrap=True,
            elem_id="eval-items",
        )
        with gr.Row():
            pick = gr.Dropdown(
                [], label="Use this model for this task", scale=3, elem_id="eval-pick"
            )
            use = gr.Button("Use it", scale=1, elem_id="eval-use")
        chosen_note = gr.Markdown(elem_id="eval-chosen")
    last = gr.State(None)

    def run(which, file, picked, metric_name, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        try:
            path = _dataset_path(which, file)
            if which == UPLOADED:  # whatever path a client sent: this browser's uploads only
                check_files(assistant.settings, request, [path])
            picked = list(picked or [])
            if not picked:
                raise BadInput("Pick at least one model to evaluate.")
        except AssistantError as err:
            gr.Warning(str(err))
            yield (gr.skip(),) * 7
            return
        events: queue.Queue = queue.Queue()

        def work():
            def step(done, total, item):
                events.put((done, total, item))

            try:
                name = None if metric_name == AUTO else metric_name
                events.put(evaluate(assistant, path, picked, name, step))
            except Exception as err:  # noqa: BLE001 - shown to the person, not a traceback
                events.put(err)

        threading.Thread(target=work, daemon=True, name="evaluate").start()
        while True:
            event = events.get()
            if isinstance(event, tuple):
                done, total, item = event
                progress(done / total, desc=f"{done}/{total} · {item.model} · {item.id}")
                # The results area opens now: a plot filled while hidden draws nothing.
                yield (
                    f"Running: {done} of {total} items done…",
                    *(gr.skip(),) * 5,
                    gr.Column(visible=True),
                )
                continue
            if isinstance(event, Exception):
                message = (
                    str(event)
                    if isinstance(event, AssistantError)
                    else f"The evaluation failed ({type(event).__name__}: {event})."
                )
                yield (f"⚠️ {message}", *(gr.skip(),) * 6)
                return
            table, item_rows, points = frames(event)
            better = "higher" if event["higher_is_better"] else "lower"
            note = (
                f"Done: **{Path(event['dataset']).name}**, task {event['task']}, metric "
                f"**{event['metric']}** ({better} is better), run `{event['run']}`."
            )
            headers = ["id", *(m["model"] for m in event["models"])]
            yield (
                note,
                table,
                points,
                pd.DataFrame(item_rows, columns=headers),
                gr.Dropdown(choices=[m["model"] for m in event["models"]], value=_best(event)),
                event,
                gr.Column(visible=True),
            )
            return

    tab.select(lambda: gr.Dropdown(choices=models_here(assistant)), None, models, api_name=False)
    go.click(
        run,
        [dataset, upload, models, metric],
        [status, results, scatter, items, pick, last, area],
        api_name=False,
    )

    def use_it(model, report):
        if not model or not report:
            return "Run an evaluation first, then pick the model to use."
        summary = next(m for m in report["models"] if m["model"] == model)
        why = choices.because(Path(report["dataset"]).stem, report["metric"], summary)
        choices.choose(assistant, report["task"], model, why)
        return f"From now on, {report['task']} requests go to **{model}** ({why})."

    use.click(use_it, [pick, last], chosen_note, api_name=False)


def _dataset_path(which: str, file) -> Path:
    if which == UPLOADED:
        if not file:
            raise BadInput("Upload your dataset (.jsonl or .csv) first.")
        return Path(file if isinstance(file, str) else file.name)
    return SHIPPED[which]


def _best(report: dict) -> str:
    sign = 1 if report["higher_is_better"] else -1
    return max(report["models"], key=lambda m: (sign * m["score"], -m["usd_local"]))["model"]


def _defaults(assistant: Assistant) -> list[str]:
    weights = assistant.settings.weights_dir
    ready = [
        e.id
        for e in assistant.catalog.for_task("text")
        if e.built and e.availability(weights)[0] and not e.endpoint
    ]
    return ready[:2]
