"""Benchmarks: ratios measured side by side in one run, medians over repeats.

    python -m assistant bench asr [--json] [--repeats N]

Each contender runs in its own subprocess, one after the other, so peak
memory is the contender's own and one cannot warm the other's caches.
Machines here are shared and noisy: every time is the median of repeats.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from assistant.settings import Settings

BENCHDATA = Path(__file__).with_name("data")


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads_used": 2,
    }


def metric(name: str, value: float, unit: str, goal: str | None = None, met=None) -> dict:
    return {"name": name, "value": round(value, 4), "unit": unit, "goal": goal, "met": met}


def timed(fn) -> float:
    """Seconds one call of fn takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# -- word error rate ---------------------------------------------------------


def words(text: str) -> list[str]:
    """Normalised words: Whisper's own English normaliser ("nine" and "9" are
    one word to it, as they are to a listener), else lowercase without punctuation."""
    try:
        from whisper.normalizers import EnglishTextNormalizer

        text = EnglishTextNormalizer()(text)
    except ImportError:
        pass
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(len(ref), 1)


# -- asr ---------------------------------------------------------------------

# name: (catalog id, decoding). "default" is exactly what the product runs;
# "greedy" and "beam5" are like-for-like settings on both libraries, "beam5"
# being each library's own default (openai-whisper's CLI, faster-whisper's API).
ASR_CONTENDERS = {
    "openai-whisper fp32, beam 5 (reference)": ("whisper-base-openai", "beam5"),
    "openai-whisper fp32, greedy": ("whisper-base-openai", "greedy"),
    "faster-whisper int8, beam 5": ("whisper-base", "beam5"),
    "faster-whisper int8, greedy sequential": ("whisper-base", "greedy"),
    "faster-whisper int8, product default": ("whisper-base", "default"),
}
REFERENCE = "openai-whisper fp32, beam 5 (reference)"
DEFAULT = "faster-whisper int8, product default"


def _decoder(adapter, mode: str):
    """A function samples -> (segments with "text", language) for one contender."""
    if mode == "default":
        return adapter._transcribe
    from models.asr import OpenAIWhisper

    is_openai = isinstance(adapter, OpenAIWhisper)
    if is_openai and mode == "greedy":
        return adapter._transcribe  # the reference adapter decodes greedily

    def decode(samples):
        if is_openai:  # beam5: openai-whisper's CLI defaults
            out = adapter.model.transcribe(
                samples, language="en", fp16=False, beam_size=5, best_of=5, verbose=None
            )
            return out["segments"], "en"
        beam = 5 if mode == "beam5" else 1
        pieces, info = adapter.model.transcribe(
            samples, language="en", beam_size=beam, condition_on_previous_text=mode == "beam5"
        )
        return ({"text": p.text} for p in pieces), info.language

    return decode


def _asr_worker(model_id: str, mode: str, repeats: int) -> dict:
    """Runs in a subprocess: load once (timed), transcribe ``repeats`` times."""
    import torch

    torch.set_num_threads(2)
    from assistant.catalog.backends import build_adapter, prepare_weights
    from assistant.catalog.entries import Catalog
    from models import audio

    settings = Settings.from_env()
    entry = Catalog.load().get(model_id)
    prepare_weights(entry, settings, progress=lambda m: None)  # not part of the cold load
    adapter = build_adapter(entry, settings, progress=lambda m: None)
    if hasattr(adapter, "cpu_threads"):
        adapter.cpu_threads = 2
    started = time.perf_counter()
    adapter.load()
    load_s = time.perf_counter() - started
    samples = audio.decode(BENCHDATA / "speech_en.flac")
    transcribe = _decoder(adapter, mode)
    runs, text = [], ""
    for _ in range(repeats):
        started = time.perf_counter()
        segments, _language = transcribe(samples)
        text = " ".join(s["text"].strip() for s in segments)
        runs.append(time.perf_counter() - started)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "load_s": load_s,
        "runs": runs,
        "text": text,
        "peak_mb": peak_mb,
        "audio_s": samples.shape[0] / audio.SAMPLE_RATE,
    }


def bench_asr(repeats: int, progress) -> list[dict]:
    reference_text = (BENCHDATA / "speech_en.txt").read_text()
    results = {}
    for name, (model_id, mode) in ASR_CONTENDERS.items():
        progress(f"  {name}: {model_id}, {repeats} runs...")
        out = subprocess.run(
            [sys.executable, "-m", "bench.runner", "_asr_worker", model_id, mode, str(repeats)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{out.stderr[-2000:]}")
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])

    metrics, rtf, wers = [], {}, {}
    for name, r in results.items():
        rtf[name] = statistics.median(r["runs"]) / r["audio_s"]
        wers[name] = wer(reference_text, r["text"]) * 100
        metrics += [
            metric(f"{name}: real-time factor (median)", rtf[name], "x audio length"),
            metric(f"{name}: word error rate", wers[name], "%"),
            metric(f"{name}: cold load", r["load_s"], "s"),
            metric(f"{name}: peak memory", r["peak_mb"], "MB"),
        ]

    def speedup(slow: str, fast: str) -> float:
        return rtf[slow] / rtf[fast]

    goal = speedup(REFERENCE, DEFAULT)
    metrics += [
        metric("product default vs reference: speed-up", goal, "x", ">= 3", goal >= 3),
        metric(
            "like for like, beam 5: faster-whisper vs openai-whisper",
            speedup(REFERENCE, "faster-whisper int8, beam 5"),
            "x",
        ),
        metric(
            "like for like, greedy: faster-whisper vs openai-whisper",
            speedup("openai-whisper fp32, greedy", "faster-whisper int8, greedy sequential"),
            "x",
        ),
    ]
    gap = wers[DEFAULT] - wers[REFERENCE]
    metrics.append(
        metric("product default WER minus reference WER", gap, "points", "<= 1", gap <= 1)
    )
    audio_s = results[REFERENCE]["audio_s"]
    metrics.append(metric("speech benchmarked", audio_s, "s", ">= 60", audio_s >= 60))
    return metrics


# -- router ----------------------------------------------------------------


def _score_router(router, name: str, progress) -> tuple[list, dict[str, list[bool]]]:
    """Route every case of a labelled set: (its requests, right/wrong per task); misses said."""
    from models.base import Request

    cases = [json.loads(line) for line in (BENCHDATA / name).open()]
    requests, right = [], {}
    for case in cases:
        request = Request(text=case["text"], attachments=tuple(Path(f) for f in case["files"]))
        got = router.route(request).task
        requests.append(request)
        right.setdefault(case["task"], []).append(got == case["task"])
        if got != case["task"]:
            progress(
                f"  miss ({name}): {case['text']!r} {case['files']} -> {got}, want {case['task']}"
            )
    return requests, right


def _accuracy(right: dict[str, list[bool]]) -> tuple[float, int]:
    total = sum(len(v) for v in right.values())
    return sum(sum(v) for v in right.values()) / total, total


def bench_router(repeats: int, progress) -> list[dict]:
    """Accuracy on the labelled sets, and warm decision latency."""
    from assistant.catalog.entries import Catalog
    from assistant.routing.router import Router

    router = Router(Catalog.load())
    # Scoring the held-out set first also builds the classifier, so the
    # latencies below are warm.
    held_out, _ = _accuracy(_score_router(router, "router_test.jsonl", progress)[1])
    requests, right = _score_router(router, "router_eval.jsonl", progress)
    accuracy, total = _accuracy(right)
    latencies = []
    for _ in range(max(repeats, 3)):
        for request in requests:
            started = time.perf_counter()
            router.route(request)
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    metrics = [
        metric("labelled requests", total, "requests", ">= 150", total >= 150),
        metric("routing accuracy", accuracy * 100, "%", ">= 95", accuracy >= 0.95),
        # Written after the exemplars were last tuned, never tuned on: the
        # honest figure (the set above guided one round of exemplars).
        metric("routing accuracy, held-out set (router_test.jsonl)", held_out * 100, "%"),
    ]
    metrics += [
        metric(f"accuracy: {task}", sum(v) / len(v) * 100, "%") for task, v in sorted(right.items())
    ]
    p50, p95 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95)]
    metrics += [
        metric("decision latency p50 (warm)", p50, "ms", "<= 10", p50 <= 10),
        metric("decision latency p95 (warm)", p95, "ms"),
    ]
    return metrics


# -- pool / app overhead --------------------------------------------------------


def bench_pool(repeats: int, progress) -> list[dict]:
    """Warm latency through the whole app vs calling the same loaded model directly.

    Same prompt, greedy, so both produce the same tokens; runs alternate
    (direct, app, direct, app, ...) so drift on a shared machine hits both.
    """
    import torch

    torch.set_num_threads(2)
    from assistant.flow.service import Assistant
    from models.base import Request

    settings = Settings.from_env()
    assistant = Assistant.from_settings(settings, progress=lambda m: None)
    prompt = Request(
        text="List five fruits and one fact about each.", max_new_tokens=48, session_id="bench"
    )
    assistant.ask(prompt)  # loads the model into the pool (cold, not measured)
    model = assistant.router.route(prompt).model
    with assistant.pool.lease(model) as lease:
        adapter = lease.adapter
    direct, app = [], []
    for _ in range(max(repeats, 5)):
        started = time.perf_counter()
        expected = adapter.run(prompt)
        direct.append(time.perf_counter() - started)
        started = time.perf_counter()
        outcome = assistant.ask(prompt, source="bench")
        app.append(time.perf_counter() - started)
        if outcome.result.text != expected.text:
            raise RuntimeError("the app and the direct call produced different text")
    d, a = statistics.median(direct), statistics.median(app)
    overhead = (a - d) / d * 100
    progress(f"  {model}: direct {d:.3f} s, through the app {a:.3f} s (medians)")
    return [
        metric("direct model call, warm (median)", d, "s", ">= 1", d >= 1),
        metric("through router + pool + ledger + costs, warm (median)", a, "s"),
        metric("warm latency through the app vs direct", a / d, "x", "<= 1.10", a / d <= 1.10),
        metric("app overhead on a >= 1 s request", overhead, "%", "<= 2", overhead <= 2),
    ]


def bench_rag(repeats: int, progress) -> list[dict]:
    from bench.rag import bench_rag as run_rag

    return run_rag(repeats, progress)


def bench_text(repeats: int, progress) -> list[dict]:
    from bench.text import bench_text as run_text

    return run_text(repeats, progress)


def bench_vision(repeats: int, progress) -> list[dict]:
    from bench.vision import bench_vision as run_vision

    return run_vision(repeats, progress)


def bench_image(repeats: int, progress) -> list[dict]:
    """The demo text-to-image model on held-out prompts, scored by the checked judge."""
    import json
    import random

    from training import scenes
    from training.train_demo import OUT, evaluate

    if not (OUT / "unet").is_dir():
        from models.base import ModelUnavailable

        raise ModelUnavailable(
            "No demo model in models/demo_diffusion: train it with "
            "python -m assistant train demo-diffusion"
        )
    # The judge first: on the very scenes the model is asked for, rendered
    # cleanly and with a generated picture's flaws, and against wrong captions.
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
    result = evaluate(OUT, progress=progress)
    info = json.loads((OUT / "training.json").read_text())
    return rows + [
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


def bench_answers(repeats: int, progress) -> list[dict]:
    from bench.answers import bench_answers as run_answers

    return run_answers(repeats, progress)


def bench_tune(repeats: int, progress) -> list[dict]:
    from bench.tune import bench_tune as run_tune

    return run_tune(repeats, progress)


def bench_load(repeats: int, progress, **options) -> list[dict]:
    from bench.load import bench_load as run_load

    return run_load(repeats, progress, **options)


BENCHES = {
    "answers": bench_answers,
    "asr": bench_asr,
    "router": bench_router,
    "pool": bench_pool,
    "rag": bench_rag,
    "text": bench_text,
    "vision": bench_vision,
    "image": bench_image,
    "tune": bench_tune,
    "load": bench_load,
}
# `bench` with no name runs these; `bench load` starts a server and runs
# for minutes, so it runs only when asked for by name.
DEFAULT = [name for name in BENCHES if name != "load"]


def run(name: str, repeats: int = 3, progress=print, **options) -> dict:
    if name not in BENCHES:
        from models.base import BadInput

        raise BadInput(f"Unknown bench '{name}'. Benches: {', '.join(BENCHES)}.")
    metrics = BENCHES[name](repeats, progress, **options)
    return {"bench": name, "machine": machine(), "metrics": metrics}


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "_asr_worker":
    print(json.dumps(_asr_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
