"""The figures of `bench answers`: each column's scores as metrics, goals on the routed one.

Apart from bench/answers.py, which runs the chains, so that each stays short.
"""

from __future__ import annotations

import statistics

from bench.measure import metric

CANDIDATES = (
    "smollm2-135m-instruct",
    "qwen2.5-coder-0.5b-instruct",
    "smollm2-135m-instruct-llamacpp",
    "qwen2.5-coder-0.5b-instruct-llamacpp",
)
ROUTED = "routed"

GOALS = {  # metric name start -> (goal text, test); judged on the product's routed column
    "retrieval: key fact": (">= 0.7", lambda v: v >= 0.7),
    "retrieval: right source": (">= 0.9", lambda v: v >= 0.9),
    "retrieval: says": (">= 0.8", lambda v: v >= 0.8),
    "picture text": (">= 0.8", lambda v: v >= 0.8),
    "follow-ups": (">= 0.8", lambda v: v >= 0.8),
    "voice memo: the reply": (">= 0.8", lambda v: v >= 0.8),
}


def _goal(name: str):
    for start, (text, test) in GOALS.items():
        if name.startswith(start):
            return text, test
    return None, None


def _metrics(runs: list) -> list[dict]:
    plain_today = {r.column: statistics.median(r.plain_s) for r in runs if r.plain_s}
    out = []
    for run in runs:
        out += _run_metrics(run, plain_today.get(CANDIDATES[0]))
    return out


def _score_metrics(run, judged: bool) -> list[dict]:
    """Each score of the column as a ratio, and the factual one as a count too."""
    out = []
    for name, marks in run.scores.items():
        value = sum(marks) / len(marks)
        text, test = _goal(name) if judged else (None, None)
        out.append(
            metric(
                f"{run.column}: {name}",
                value,
                f"ratio of {len(marks)}",
                text,
                test(value) if test else None,
            )
        )
        if name.startswith("factual"):
            right = sum(marks)
            out.append(
                metric(
                    f"{run.column}: factual questions right",
                    right,
                    f"of {len(marks)}",
                    ">= 18" if judged else None,
                    right >= 18 if judged else None,
                )
            )
    return out


def _run_metrics(run, today: float | None) -> list[dict]:
    """One column's metrics; goals only on the routed column, the one the product runs."""
    judged = run.column == ROUTED
    out = _score_metrics(run, judged)
    out.append(
        metric(
            f"{run.column}: replies showing prompt scaffolding",
            run.scaffolding,
            "replies",
            "0",
            run.scaffolding == 0,
        )
    )
    grounded = statistics.median(run.grounded_s) if run.grounded_s else 0.0
    plain = statistics.median(run.plain_s) if run.plain_s else 0.0
    out.append(
        metric(
            f"{run.column}: grounded reply, warm, end to end (p50)",
            grounded,
            "s",
            "<= 6" if judged else None,
            grounded <= 6 if judged else None,
        )
    )
    out.append(metric(f"{run.column}: plain chat reply, warm, end to end (p50)", plain, "s"))
    if judged and today:
        out.append(
            metric(
                f"{run.column}: plain chat p50 vs {CANDIDATES[0]} alone (today)",
                plain / today,
                "x",
                "<= 1.1",
                plain / today <= 1.1,
            )
        )
    usd = statistics.median(run.usd) if run.usd else 0.0
    out.append(metric(f"{run.column}: $ here per reply (median)", usd, "USD"))
    for model, n in sorted(run.models.items()):
        out.append(metric(f"{run.column}: text steps run on {model}", n, "steps"))
    return out
