"""Running a dataset on several models and scoring them: the eval engine.

Each item goes through the real flow (router, pool, ledger with source
``eval``) with the model pinned, so an eval measures what a person would
get, at the cost they would pay. Items are appended to a run file in
ASSISTANT_HOME/evals as they finish: a run that is interrupted (Ctrl-C, a
crash, a closed tab) keeps what it did, and the same command resumes it.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.evaluation import datasets, runs
from assistant.evaluation.judge import METRIC as JUDGE
from assistant.evaluation.judge import Judge, catalog_judge
from assistant.evaluation.metrics import Metric, metric
from models.base import BadInput, Request

RUN_VERSION = 1  # in the run key: a change to how items are run starts fresh runs


@dataclass(frozen=True)
class ItemResult:
    id: str  # the example's id
    model: str
    output: str  # the text the evaluated model produced (its own step of a chain)
    score: float | None  # None when the request failed: counted as 0 in the mean, and shown
    latency_s: float  # queue + run, without a cold load (that is the pool's, paid once)
    usd_local: float
    usd_cloud: float | None
    status: str  # ok | error | refused
    error: str | None = None
    note: str | None = None  # the judge's verdict, or why an item was not judged


def run_key(dataset: Path, models: Sequence[str], metric_name: str) -> str:
    # metric_name is "judge:<model>" for a judged run: another judge, another run.
    """Same file bytes, models and metric: the same run, so it resumes."""
    digest = hashlib.sha256(Path(dataset).read_bytes()).hexdigest()
    spec = json.dumps([RUN_VERSION, digest, list(models), metric_name])
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def task_for(assistant, models: Sequence[str], first: datasets.Example) -> str:
    """The one route task every model serves, as the router would route the first example."""
    entries = [assistant.catalog.get(m) for m in models]  # BadInput names unknown ids
    request = assistant.check(Request(text=first.input, attachments=first.attachments))
    routed, _, _ = assistant.router.classify(request)
    for task in (routed, *entries[0].tasks):
        unable = [e.id for e in entries if task not in e.tasks]
        if not unable:
            return task
    able = ", ".join(e.id for e in assistant.catalog.for_task(routed)) or "none"
    wrong = ", ".join(e.id for e in entries if routed not in e.tasks)
    raise BadInput(
        f"This dataset asks for {routed}, which {wrong} cannot serve. Models that can: {able}."
    )


def evaluate(
    assistant,
    dataset: Path,
    models: Sequence[str],
    metric_name: str | None = None,
    progress: Callable[[int, int, ItemResult], None] | None = None,
    judge: str | Judge | None = None,
) -> dict:
    """Run every example on every model (resuming a run cut short) and return the report.

    The report is the `eval --json` contract of DESIGN.md: dataset, metric,
    models (score, n, latency_p50_s, usd_local, usd_cloud) and items. With
    metric "judge", ``judge`` names the grading model (or is a Judge) and the
    report says so under "judge", with the judge's known bias.
    """
    if not models:
        raise BadInput("Name at least one model to evaluate (--models A,B).")
    if len(set(models)) != len(models):
        raise BadInput("A model is named twice in --models.")
    examples = datasets.load(dataset)  # every line checked before anything runs
    task = task_for(assistant, models, examples[0])
    chosen, grader = _metric(assistant, metric_name, judge, task)
    if chosen.needs_expected:
        lacking = [e.id for e in examples if not e.expected]
        if lacking:
            raise BadInput(
                f"Metric '{chosen.name}' needs 'expected' on every line; "
                f"missing for id {', '.join(lacking[:5])}."
            )
    spec = f"judge:{grader.model}" if grader else chosen.name
    path = runs.folder(assistant.settings.home) / f"{run_key(dataset, models, spec)}.jsonl"
    done = _load_items(path)
    total = len(examples) * len(models)
    with path.open("a", encoding="utf-8") as out:
        for model in models:  # model by model: each is loaded once
            for example in examples:
                item = done.get((example.id, model))
                if item is None:
                    item = _run_one(assistant, example, model, task, chosen, grader)
                    out.write(json.dumps(item.__dict__) + "\n")
                    out.flush()
                    done[(example.id, model)] = item
                if progress:
                    progress(len(done), total, item)
    items = [done[(e.id, m)] for m in models for e in examples]
    report = _report(dataset, chosen, task, path.stem, models, items)
    if grader:
        report["judge"] = grader.about()
    runs.save_meta(path, report)
    return report


def _metric(assistant, name: str | None, judge, task: str) -> tuple[Metric, Judge | None]:
    if name != "judge":
        return metric(name or ("wer" if task == "asr" else "contains")), None
    if task != "text":
        raise BadInput(f"The judge grades text answers; this dataset's task is {task}.")
    if not judge:
        raise BadInput("Metric 'judge' needs a judge model (--judge ID), a text model.")
    return JUDGE, judge if isinstance(judge, Judge) else catalog_judge(assistant, judge)


def _report(dataset, chosen: Metric, task: str, run: str, models, items) -> dict:
    return {
        "dataset": str(dataset),
        "metric": chosen.name,
        "higher_is_better": chosen.higher_is_better,
        "task": task,
        "run": run,
        "models": [_summary(m, [i for i in items if i.model == m], chosen) for m in models],
        "items": [
            {
                "id": i.id,
                "model": i.model,
                "output": i.output,
                "score": i.score,
                "latency_s": i.latency_s,
                "status": i.status,
                "error": i.error,
                "note": i.note,
            }
            for i in items
        ],
    }


def _run_one(
    assistant,
    example: datasets.Example,
    model: str,
    task: str,
    chosen: Metric,
    grader: Judge | None = None,
) -> ItemResult:
    # A speech model is judged on its transcript, not on what a text model makes of it.
    request = Request(
        text=example.input,
        attachments=example.attachments,
        model=model,
        task=task,
        session_id="eval",
        temperature=0.0,
        transcribe_only=task == "asr",
    )
    outcome = assistant.ask(request, source="eval")
    # In a chain (speech, then its answer) the evaluated model's output is its own step's.
    own = next(
        (s for s in (outcome.steps or (outcome,)) if s.route and s.route.model == model), outcome
    )
    output = own.result.text if own.result else ""
    score, note = None, None
    if own.status == "ok" and grader:
        verdict = grader.grade(example.input, output, example.expected, model)
        score, note = verdict.score, verdict.note
    elif own.status == "ok":
        score = chosen.score(output, example.expected)
    cost = outcome.cost
    return ItemResult(
        example.id,
        model,
        output,
        score,
        round(own.queue_s + own.run_s, 4),
        cost.usd_local if cost else 0.0,
        cost.usd_cloud if cost else None,
        own.status,
        own.error,
        note,
    )


def _load_items(path: Path) -> dict[tuple[str, str], ItemResult]:
    done: dict[tuple[str, str], ItemResult] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = ItemResult(**json.loads(line))
        except (ValueError, TypeError):
            continue  # a line cut by a crash: that item runs again
        done[(item.id, item.model)] = item
    return done


def _summary(model: str, items: list[ItemResult], chosen: Metric) -> dict:
    # A failed item scores the worst: 0 for a rate of right answers, 1 for an error rate.
    # An answered item the judge did not grade (its own answer, no score in its
    # reply) is left out of the mean: it says nothing of the answer.
    worst = 0.0 if chosen.higher_is_better else 1.0
    graded = [i for i in items if i.status != "ok" or i.score is not None]
    scores = [worst if i.score is None else i.score for i in graded]
    clouds = [i.usd_cloud for i in items if i.usd_cloud is not None]
    return {
        "model": model,
        "score": round(statistics.fmean(scores), 4) if scores else None,
        "n": len(items),
        "failed": sum(i.status != "ok" for i in items),
        "unscored": len(items) - len(graded),
        "latency_p50_s": round(statistics.median(i.latency_s for i in items), 3),
        "usd_local": sum(i.usd_local for i in items),
        "usd_cloud": sum(clouds) if clouds else None,
    }
