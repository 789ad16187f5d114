"""The demo text-to-image model on held-out prompts, scored by the checked judge."""

from __future__ import annotations

from bench.measure import metric


def bench_image(repeats: int, progress) -> list[dict]:
    """The demo text-to-image model on held-out prompts, scored by the checked judge."""
    import json

    from training.train_demo import OUT, evaluate

    if not (OUT / "unet").is_dir():
        from models.base import ModelUnavailable

        raise ModelUnavailable(
            "No demo model in models/demo_diffusion: train it with "
            "python -m assistant train demo-diffusion"
        )
    rows = _judge_metrics()
    result = evaluate(OUT, progress=progress)
    info = json.loads((OUT / "training.json").read_text())
    return rows + _model_metrics(result, info)


def _judge_metrics() -> list[dict]:
    """The judge first: on the very scenes the model is asked for, rendered
    cleanly and with a generated picture's flaws, and against wrong captions."""
    import random

    from training import scenes

    rows, rng = [], random.Random(5)
    for which in ("single", "placed", "two"):
        wanted = scenes.test_scenes(which)
        clean = [scenes.look(scenes.render(w, rng)) for w in wanted]
        flawed = [scenes.look(scenes.degrade(scenes.render(w, rng), rng)) for w in wanted]
        right = sum(map(scenes.follows, clean, wanted)) / len(wanted)
        rough = sum(map(scenes.follows, flawed, wanted)) / len(wanted)
        rows.append(
            metric(
                f"judge on rendered {which} scenes: right",
                right,
                "fraction",
                ">= 0.99" if which == "single" else None,
                right >= 0.99 if which == "single" else None,
            )
        )
        rows.append(metric(f"judge on flawed {which} scenes: right", rough, "fraction"))
    _, wrong = scenes.check_judge(300)
    rows.append(
        metric(
            "judge agrees with a mismatched caption", wrong, "fraction", "<= 0.02", wrong <= 0.02
        )
    )
    return rows


def _model_metrics(result: dict, info: dict) -> list[dict]:
    """The demo model's held-out scores, its drawing speed and its training."""
    return [
        metric(
            "held-out single objects: background right",
            result["background"],
            "fraction",
            ">= 0.9",
            result["background"] >= 0.9,
        ),
        metric(
            "held-out single objects: colour and shape both right",
            result["color_and_shape"],
            "fraction",
            ">= 0.7",
            result["color_and_shape"] >= 0.7,
        ),
        metric("held-out single objects: colour right", result["color"], "fraction"),
        metric("held-out single objects: shape right", result["shape"], "fraction"),
        metric("held-out single objects: all three right", result["all"], "fraction"),
        metric("held-out object at a place: all right", result["placed_right"], "fraction"),
        metric("held-out two-object scenes: all right", result["two_right"], "fraction"),
        metric(
            "pictures judged",
            result["single_images"] + result["placed_images"] + result["two_images"],
            "images",
        ),
        metric(
            "seconds per picture (25 DDIM steps, guidance 3, CPU, batches of 32)",
            result["seconds_per_image"],
            "s",
        ),
        metric("training wall time", info["wall_s"] / 60, "min"),
        metric("training steps (batch 64)", info["steps"], "steps"),
    ]
