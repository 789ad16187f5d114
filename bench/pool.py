"""The app's overhead: a warm request through router, pool, ledger and costs vs the model."""

from __future__ import annotations

import statistics
import time

from assistant.settings import Settings
from bench.measure import metric


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
