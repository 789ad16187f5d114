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
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from assistant.evaluation import choices
from assistant.evaluation.engine import evaluate
from assistant.evaluation.metrics import METRICS
from assistant.evaluation.rating import pareto
from assistant.flow.service import Assistant
from assistant.web.access import check_files
from assistant.web.ui.cards import build_model_cards
from assistant.web.ui.compare import models_here
from assistant.web.ui.evalruns import build_runs_side_by_side
from models.base import AssistantError, BadInput

EXAMPLES = Path(__file__).resolve().parents[2] / "evaluation" / "examples"
SHIPPED = {
    "facts — 24 short factual questions (text)": EXAMPLES / "facts.jsonl",
    "speech — 5 spoken sentences with their text (speech)": EXAMPLES / "speech.jsonl",
}
UPLOADED = "my own file (upload it)"
AUTO = "auto (contains for text, wer for speech)"
JUDGE = "judge (model-graded: a model's opinion)"
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


PER_1000 = "usd per 1,000 items here"


def frames(report: dict) -> tuple[list[list], list[list], pd.DataFrame]:
    """(results rows, item rows, scatter frame) of an eval report."""
    scored = [m for m in report["models"] if m["score"] is not None]
    front = pareto(
        [(m["model"], m["score"], m["usd_local"]) for m in scored],
        report["higher_is_better"],
    )
    results = []
    for m in report["models"]:
        cloud = f"${m['usd_cloud']:.5f}" if m["usd_cloud"] is not None else "–"
        results.append(
            [
                m["model"],
                "–" if m["score"] is None else round(m["score"], 3),
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
        score = _item_score(item)
        row[item["model"]] = f"[{score}] {item['output'][:160]}"
    models = [m["model"] for m in report["models"]]
    items = [[r["id"], *(r.get(m, "") for m in models)] for r in by_id.values()]
    scatter = pd.DataFrame(
        {
            "model": [m["model"] for m in scored],
            "score": [m["score"] for m in scored],
            # Per 1,000 items: a tiny model's cost per item needs seven decimals to read.
            PER_1000: [round(m["usd_local"] / max(m["n"], 1) * 1000, 5) for m in scored],
            "p50 latency s": [m["latency_p50_s"] for m in scored],
            "front": ["Pareto front" if m["model"] in front else "dominated" for m in scored],
        }
    )
    return results, items, scatter


@dataclass(frozen=True)
class Inputs:
    dataset: gr.Dropdown
    upload: gr.File
    models: gr.Dropdown
    metric: gr.Dropdown
    judge: gr.Dropdown
    go: gr.Button


@dataclass(frozen=True)
class Results:
    status: gr.Markdown
    area: gr.Column
    table: gr.Dataframe
    scatter: gr.ScatterPlot
    items: gr.Dataframe
    pick: gr.Dropdown
    use: gr.Button
    chosen: gr.Markdown
    last: gr.State

    def outputs(self) -> list:
        """What a run updates, in the order the run's generator yields them."""
        return [self.status, self.table, self.scatter, self.items, self.pick, self.last, self.area]


def build_evaluate_tab(assistant: Assistant, tab: gr.Tab) -> None:
    gr.Markdown(
        "Score models on **your own examples**: a JSONL (or CSV) file, one example a "
        'line: `{"id", "input", "attachments", "expected"}`. Each item runs through '
        "the real router and ledger with the model pinned; a run cut short resumes "
        "where it stopped."
    )
    given = _inputs(assistant)
    shown = _results()
    given.metric.change(
        lambda m: gr.Dropdown(visible=m == JUDGE), given.metric, given.judge, api_name=False
    )
    tab.select(
        lambda: gr.Dropdown(choices=models_here(assistant)), None, given.models, api_name=False
    )
    ran = given.go.click(
        _runner(assistant),
        [given.dataset, given.upload, given.models, given.metric, given.judge],
        shown.outputs(),
        api_name=False,
    )
    shown.use.click(_use_it(assistant), [shown.pick, shown.last], shown.chosen, api_name=False)
    refresh_runs = build_runs_side_by_side(assistant, tab)
    ran.then(*refresh_runs, api_name=False)
    build_model_cards(assistant, tab)


def _inputs(assistant: Assistant) -> Inputs:
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
            models_here(assistant),
            multiselect=True,
            label="Models",
            scale=3,
            value=_defaults(assistant),
            elem_id="eval-models",
        )
        metric = gr.Dropdown([AUTO, *METRICS, JUDGE], value=AUTO, label="Metric", scale=2)
        texts = [e.id for e in assistant.catalog.for_task("text") if e.built]
        judge = gr.Dropdown(
            texts,
            value=texts[0] if texts else None,
            label="Judge model (grades the others; never its own answers)",
            visible=False,
            scale=2,
            elem_id="eval-judge",
        )
        go = gr.Button("Run the evaluation", variant="primary", scale=1, elem_id="eval-go")
    return Inputs(dataset, upload, models, metric, judge, go)


def _results() -> Results:
    status = gr.Markdown(elem_id="eval-status")
    # Shown once a run has finished: empty tables and plots only puzzle a newcomer.
    with gr.Column(visible=False) as area:
        table = gr.Dataframe(headers=RESULT_COLUMNS, interactive=False, elem_id="eval-results")
        scatter = gr.ScatterPlot(
            x=PER_1000,
            y="score",
            color="front",
            title="Score against cost per 1,000 items (★ the Pareto front)",
            tooltip=["model", "score", PER_1000, "p50 latency s"],
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
        chosen = gr.Markdown(elem_id="eval-chosen")
    return Results(status, area, table, scatter, items, pick, use, chosen, gr.State(None))


def _runner(assistant: Assistant):
    """The Run button's generator: progress while a worker thread evaluates, then results."""

    def run(which, file, picked, metric_name, judge, request: gr.Request, progress=gr.Progress()):  # noqa: B008
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
        name = {AUTO: None, JUDGE: "judge"}.get(metric_name, metric_name)
        events = _start(assistant, path, picked, name, judge if name == "judge" else None)
        while True:
            event = events.get()
            if isinstance(event, tuple):
                done, total, item = event
                progress(done / total, desc=f"{done}/{total} · {item.model} · {item.id}")
                # The results area opens now: a plot filled while hidden draws nothing.
                running = f"Running: {done} of {total} items done…"
                yield (running, *(gr.skip(),) * 5, gr.Column(visible=True))
                continue
            if isinstance(event, Exception):
                yield (f"⚠️ {_message(event)}", *(gr.skip(),) * 6)
                return
            yield _finished(event)
            return

    return run


def _start(assistant: Assistant, path: Path, picked, name, judge) -> queue.Queue:
    """Evaluate in a worker thread; the queue gets progress tuples, then the report or an error."""
    events: queue.Queue = queue.Queue()

    def work():
        def step(done, total, item):
            events.put((done, total, item))

        try:
            events.put(evaluate(assistant, path, picked, name, step, judge=judge))
        except Exception as err:  # noqa: BLE001 - shown to the person, not a traceback
            events.put(err)

    threading.Thread(target=work, daemon=True, name="evaluate").start()
    return events


def _message(err: Exception) -> str:
    if isinstance(err, AssistantError):
        return str(err)
    return f"The evaluation failed ({type(err).__name__}: {err})."


def _finished(report: dict) -> tuple:
    table, item_rows, points = frames(report)
    better = "higher" if report["higher_is_better"] else "lower"
    note = (
        f"Done: **{Path(report['dataset']).name}**, task {report['task']}, metric "
        f"**{report['metric']}** ({better} is better), run `{report['run']}`."
    )
    if "judge" in report:
        note += (
            f"\n\n⚖️ **Judged by {report['judge']['model']}**, {report['judge']['bias']}. "
            "Not comparable with measured metrics (contains, exact, wer, json)."
        )
    headers = ["id", *(m["model"] for m in report["models"])]
    # From zero, with room above: a lone point or equal scores otherwise make an
    # axis of one value printed to six decimals (seen in the walk: "1.000000").
    top = max([1.0, *points["score"]]) * 1.1
    right = max([0.0, *points[PER_1000]]) * 1.15 or 1.0
    return (
        note,
        table,
        gr.ScatterPlot(value=points, y_lim=[0, top], x_lim=[0, right]),
        pd.DataFrame(item_rows, columns=headers),
        gr.Dropdown(choices=[m["model"] for m in report["models"]], value=_best(report)),
        report,
        gr.Column(visible=True),
    )


def _use_it(assistant: Assistant):
    def use_it(model, report):
        if not model or not report:
            return "Run an evaluation first, then pick the model to use."
        summary = next(m for m in report["models"] if m["model"] == model)
        if summary["score"] is None:
            return f"{model} has no score in this run (its items were not graded)."
        why = choices.because(Path(report["dataset"]).stem, report["metric"], summary)
        choices.choose(assistant, report["task"], model, why)
        return f"From now on, {report['task']} requests go to **{model}** ({why})."

    return use_it


def _item_score(item: dict) -> str:
    if item["score"] is not None:
        return f"{item['score']:.2f}"
    return "failed" if item["status"] != "ok" else "not graded"


def _dataset_path(which: str, file) -> Path:
    if which == UPLOADED:
        if not file:
            raise BadInput("Upload your dataset (.jsonl or .csv) first.")
        return Path(file if isinstance(file, str) else file.name)
    return SHIPPED[which]


def _best(report: dict) -> str | None:
    sign = 1 if report["higher_is_better"] else -1
    scored = [m for m in report["models"] if m["score"] is not None]
    if not scored:
        return None
    return max(scored, key=lambda m: (sign * m["score"], -m["usd_local"]))["model"]


def _defaults(assistant: Assistant) -> list[str]:
    weights = assistant.settings.weights_dir
    ready = [
        e.id
        for e in assistant.catalog.for_task("text")
        if e.built and e.availability(weights)[0] and not e.endpoint
    ]
    return ready[:2]
