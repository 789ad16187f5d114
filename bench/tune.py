"""bench tune: does fine-tuning on the shipped example teach the format, and at what price?

One run, side by side: the base and the tuned model on 20 unseen ticket
prompts (the taught JSON shape, metric json) and on 24 short factual
questions (what tuning must not break, metric contains); the training's
wall time, seconds per step and tokens per second; and decode speed of
both through the same runtime, from the ledger rows of the factual run.
Everything runs in a throwaway ASSISTANT_HOME whose weights are the
prepared ones, so nothing is added to the person's catalog.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from assistant.settings import Settings
from bench.measure import metric

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "training" / "examples" / "tickets.jsonl"
UNSEEN = ROOT / "training" / "examples" / "tickets_unseen.jsonl"
FACTS = ROOT / "assistant" / "evaluation" / "examples" / "facts.jsonl"
BASE = "smollm2-135m-instruct"


def bench_tune(repeats: int, progress) -> list[dict]:
    from assistant.evaluation.engine import evaluate
    from assistant.flow.service import Assistant
    from assistant.tuning import tune

    prepared = Settings.from_env().weights_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        home = Path(tmp)
        (home / "weights").symlink_to(prepared, target_is_directory=True)
        assistant = Assistant.from_settings(Settings(home=home), progress=progress)
        name = f"bench-tickets-{int(time.time())}"
        progress(f"Training {name} from {BASE} on {DATA.name}...")

        def step(s) -> None:
            if isinstance(s, str):
                progress(f"  {s}")
            elif s.step % 3 == 0:
                progress(f"  step {s.step}/{s.total} loss {s.loss:.3f}")

        card = tune(assistant, DATA, BASE, name, progress=step)
        progress("Unseen ticket prompts (json shape), base and tuned...")
        shape = evaluate(assistant, UNSEEN, [BASE, name], "json")
        progress("Factual questions, base and tuned...")
        facts = evaluate(assistant, FACTS, [BASE, name], "contains")
        for item in shape["items"][:4] + shape["items"][20:24]:
            progress(f"  {item['model'][:24]:<24} {item['score']} {item['output'][:80]!r}")
        decode = _decode_speed(assistant.ledger, (BASE, name))
    return _tune_metrics(card, shape, facts, decode[name] / decode[BASE] if decode[BASE] else 0.0)


def _tune_metrics(card: dict, shape: dict, facts: dict, ratio: float) -> list[dict]:
    """The run's card and its two evaluations (base, tuned) as metrics with their goals."""
    t = card["training"]
    base_shape, tuned_shape = (m["score"] for m in shape["models"])
    base_facts, tuned_facts = (round(m["score"] * m["n"]) for m in facts["models"])
    return [
        metric(
            "taught JSON shape on 20 unseen prompts, base",
            base_shape,
            "fraction",
            "<= 0.35",
            base_shape <= 0.35,
        ),
        metric(
            "taught JSON shape on 20 unseen prompts, tuned",
            tuned_shape,
            "fraction",
            ">= 0.85",
            tuned_shape >= 0.85,
        ),
        metric("factual questions right, base", base_facts, "of 24"),
        metric(
            "factual questions right, tuned",
            tuned_facts,
            "of 24",
            "no more than 2 below the base",
            tuned_facts >= base_facts - 2,
        ),
        metric(
            "training wall time (48 examples less validation, 3 epochs, LoRA r16)",
            t["seconds"] / 60,
            "min",
            "<= 10",
            t["seconds"] <= 600,
        ),
        metric("seconds per step (batch 8)", t["seconds_per_step"], "s"),
        metric("training tokens per second", t["tokens_per_s"], "tokens/s"),
        metric(
            "validation loss, before → after",
            t["val_loss_after"],
            "nats",
            f"below {t['val_loss_before']:.3f} (before)",
            t["val_loss_after"] < t["val_loss_before"],
        ),
        metric(
            "decode speed, tuned vs base (same runtime)",
            ratio,
            "x",
            "0.9 to 1.1",
            0.9 <= ratio <= 1.1,
        ),
        metric("cost here", card["cost"]["usd_local"], "USD"),
        metric("hosted fine-tuning job for the same tokens", card["cost"]["usd_cloud"] or 0, "USD"),
    ]


def _decode_speed(ledger, models) -> dict[str, float]:
    """Median generated tokens per second of run time, per model, from the ledger."""
    speeds: dict[str, list[float]] = {m: [] for m in models}
    for row in ledger.rows(limit=500):
        if row["model"] in speeds and row["status"] == "ok" and (row["run_s"] or 0) > 0:
            if row["units_out"] and row["unit"] == "tokens":
                speeds[row["model"]].append(row["units_out"] / row["run_s"])
    return {m: statistics.median(v) if v else 0.0 for m, v in speeds.items()}
