"""One prompt to 2–4 models at once, their answers side by side.

Each model runs in a thread of its own through the real flow (router with
the model pinned, pool, ledger with source ``compare``), so the columns
stream together and each is measured as a person would live it: time to
its first piece, total time, and a speed in the unit of its task.
Every compared model is loaded once by the pool, as for any request;
comparing adds threads, not loads.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.evaluation.datasets import Example
from assistant.evaluation.engine import task_for
from assistant.flow.outcome import Outcome
from models.base import BadInput, Request

MIN_MODELS, MAX_MODELS = 2, 4


@dataclass(frozen=True)
class Piece:
    """A streamed piece of one column."""

    column: int  # index into the models asked, in order
    text: str


@dataclass(frozen=True)
class Column:
    """A finished column: what the model answered and what it cost."""

    column: int
    model: str
    task: str
    output: str
    status: str  # ok | error | refused
    error: str | None
    first_s: float | None  # seconds to the first streamed piece; None if nothing streamed
    total_s: float  # wall time of the whole request, load included
    timings: dict  # queue_s, load_s, run_s as the ledger has them
    cost: dict | None  # the ledger's cost, or None when nothing ran
    speed: str  # "38.2 tokens/s", "0.12× real time", "4.1 s per picture", or ""
    request_id: str


def check_models(assistant, models: Sequence[str], text: str, attachments: Sequence[Path]) -> str:
    """The task all models share for this prompt, or BadInput saying what to change."""
    if not MIN_MODELS <= len(models) <= MAX_MODELS:
        raise BadInput(f"Compare takes {MIN_MODELS} to {MAX_MODELS} models; {len(models)} given.")
    if len(set(models)) != len(models):
        raise BadInput("A model is named twice; compare different models.")
    probe = Example("prompt", text, tuple(attachments), ())
    return task_for(assistant, models, probe)


def stream(
    assistant,
    text: str,
    models: Sequence[str],
    attachments: Sequence[Path] = (),
    user: str = "local",
    session_id: str = "compare",
) -> Iterator[Piece | Column]:
    """Pieces of every column as they arrive, then each column's Column as it finishes."""
    task = check_models(assistant, models, text, attachments)
    events: queue.Queue = queue.Queue()

    def run(index: int, model: str) -> None:
        start = time.perf_counter()
        first = None
        pieces: list[str] = []
        request = Request(
            text=text,
            attachments=tuple(attachments),
            model=model,
            task=task,
            user=user,
            session_id=session_id,
        )
        outcome = None
        try:
            for item in assistant.handle(request, source="compare"):
                if isinstance(item, Outcome):
                    outcome = item
                elif isinstance(item, str) and item:
                    first = first if first is not None else time.perf_counter() - start
                    pieces.append(item)
                    events.put(Piece(index, item))
        except Exception as err:  # noqa: BLE001 - one column's crash must not end the others
            events.put(
                Column(
                    index,
                    model,
                    task,
                    "".join(pieces),
                    "error",
                    f"{type(err).__name__}: {err}",
                    first,
                    time.perf_counter() - start,
                    {},
                    None,
                    "",
                    "",
                )
            )
            return
        events.put(
            _column(
                index, model, task, outcome, "".join(pieces), first, time.perf_counter() - start
            )
        )

    threads = [
        threading.Thread(target=run, args=(i, m), daemon=True, name=f"compare-{m}")
        for i, m in enumerate(models)
    ]
    for t in threads:
        t.start()
    finished = 0
    while finished < len(models):
        event = events.get()
        finished += isinstance(event, Column)
        yield event


def _column(index, model, task, outcome, streamed: str, first, total) -> Column:
    result = outcome.result
    # For a chain, the compared model's own step is the column's answer.
    own = next(
        (s for s in (outcome.steps or (outcome,)) if s.route and s.route.model == model), outcome
    )
    output = own.result.text if own.result else (streamed or (result.text if result else ""))
    files = [str(f) for f in own.result.files] if own.result else []
    if files:
        output = (output + "\n" if output else "") + "\n".join(files)
    return Column(
        index,
        model,
        task,
        output,
        own.status,
        own.error,
        first,
        total,
        {"queue_s": own.queue_s, "load_s": own.load_s, "run_s": own.run_s},
        outcome.cost.as_dict() if outcome.cost else None,
        speed(task, own),
        outcome.request_id,
    )


def speed(task: str, outcome) -> str:
    """The measure a person compares for this kind of work."""
    if outcome.status != "ok" or not outcome.result or outcome.run_s <= 0:
        return ""
    usage = outcome.result.usage
    if task in ("text", "rag", "vision") and usage.unit == "tokens" and usage.units_out:
        return f"{usage.units_out / outcome.run_s:.1f} tokens/s"
    if task == "asr" and usage.units_in:
        return f"{outcome.run_s / usage.units_in:.2f}× real time"  # units_in: audio seconds
    if task in ("image_generation", "image_edit") and outcome.result.files:
        return f"{outcome.run_s / len(outcome.result.files):.1f} s per picture"
    return ""


def compare(
    assistant,
    text: str,
    models: Sequence[str],
    attachments: Sequence[Path] = (),
    user: str = "local",
    on_piece=None,
) -> dict:
    """Run to the end; the `compare --json` contract, columns in the order asked."""
    columns: dict[int, Column] = {}
    compare_id = uuid.uuid4().hex[:12]
    for event in stream(assistant, text, models, attachments, user, f"compare-{compare_id}"):
        if isinstance(event, Column):
            columns[event.column] = event
        elif on_piece:
            on_piece(event)
    report = {
        "id": compare_id,
        "prompt": text,
        "attachments": [str(a) for a in attachments],
        "columns": [
            {
                "model": c.model,
                "task": c.task,
                "output": c.output,
                # Both rounded alike, so first ≤ total holds in the report as measured.
                "timings": {
                    **c.timings,
                    "total_s": round(c.total_s, 4),
                    "first_s": None if c.first_s is None else round(c.first_s, 4),
                },
                "speed": c.speed,
                "cost": c.cost,
                "status": c.status,
                "error": c.error,
                "request_id": c.request_id,
            }
            for c in (columns[i] for i in range(len(models)))
        ],
    }
    # Kept, so a vote given after reading the columns knows what was compared.
    saved = assistant.settings.home / "compares"
    saved.mkdir(parents=True, exist_ok=True)
    (saved / f"{compare_id}.json").write_text(json.dumps(report, ensure_ascii=False))
    return report


def saved_compare(home: Path, compare_id: str) -> dict:
    path = home / "compares" / f"{Path(compare_id).name}.json"
    if not path.is_file():
        raise BadInput(f"No comparison '{compare_id}'. Run `compare` first; it prints the id.")
    return json.loads(path.read_text())
