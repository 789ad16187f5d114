"""bench compare: does comparing N models cost more than running them one by one?

Compare sends one prompt to 2-4 models at once (threads, each model leased
from the pool). Its promise is no overhead: each model is loaded once and
kept, and the wall time of a comparison is at most what the same requests
take one after another (less where the device has room for both). Side by
side in one run, alternating so drift on a shared machine hits both:
the same prompts through `compare` and through `ask` per model in turn,
greedy and with compare's own reply cap, so both produce the same text.
"""

from __future__ import annotations

import statistics
import time

from assistant.settings import Settings
from bench.measure import metric

MODELS = ("smollm2-135m-instruct", "smollm2-135m-instruct-fp32")
# Short answers: the fp32 reference decodes ~15 tokens/s on 2 cores.
PROMPTS = (
    "In one word: what colour is a ripe banana?",
    "In one sentence: what does a compiler do?",
)


def bench_compare(repeats: int, progress) -> list[dict]:
    from assistant.evaluation.compare import compare
    from assistant.flow.service import Assistant
    from models.base import Request

    assistant = Assistant.from_settings(Settings.from_env(), progress=lambda m: None)
    for model in MODELS:  # loads each model once (cold, not measured)
        assistant.ask(Request(text="Hi", model=model, max_new_tokens=4), source="bench")
    loaded = {m: id(_adapter(assistant, m)) for m in MODELS}
    one_by_one, together, same = [], [], 0
    for r in range(max(repeats, 3)):
        for prompt in PROMPTS:
            started = time.perf_counter()
            alone = [
                assistant.ask(Request(text=prompt, model=m, task="text"), source="bench")
                for m in MODELS
            ]
            one_by_one.append(time.perf_counter() - started)
            started = time.perf_counter()
            report = compare(assistant, prompt, list(MODELS))
            together.append(time.perf_counter() - started)
            texts = [c["output"] for c in report["columns"]]
            same += texts == [o.result.text for o in alone]
        progress(
            f"  round {r + 1}: one by one {one_by_one[-1]:.2f} s, compare {together[-1]:.2f} s"
        )
    reloaded = sum(id(_adapter(assistant, m)) != loaded[m] for m in MODELS)
    a, c = statistics.median(one_by_one), statistics.median(together)
    runs = len(one_by_one)
    return [
        metric(f"{len(MODELS)} models one by one, per prompt (median)", a, "s"),
        metric("the same through compare (median)", c, "s"),
        metric("compare vs one by one", c / a, "x", "<= 1.10", c / a <= 1.10),
        metric("compare columns identical to the models alone", same, f"of {runs}"),
        metric("models loaded again by compare", reloaded, "models", "0", reloaded == 0),
    ]


def _adapter(assistant, model: str):
    with assistant.pool.lease(model) as lease:
        return lease.adapter
