"""Benchmarks: ratios measured side by side in one run, medians over repeats.

    python -m assistant bench NAME [--json] [--repeats N]

Machines here are shared and noisy: every time is the median of repeats.
Each bench is a module of this package with a ``bench_<name>(repeats,
progress)`` function, imported only when it runs (most need torch); the
shared pieces are in bench/measure.py, so no bench imports this runner.
"""

from __future__ import annotations

import importlib

from bench.measure import machine

# name -> the module whose bench_<name>(repeats, progress) returns its metrics.
BENCHES = {
    "answers": "bench.answers",
    "asr": "bench.asr",
    "router": "bench.router",
    "pool": "bench.pool",
    "rag": "bench.rag",
    "text": "bench.text",
    "vision": "bench.vision",
    "image": "bench.image",
    "tune": "bench.tune",
    "scale": "bench.scale",
    "compare": "bench.compare",
    "load": "bench.load",
}
# `bench` with no name runs these; `bench load` starts a server and runs for
# minutes, so it runs only when asked for by name.
DEFAULT = [name for name in BENCHES if name != "load"]


def bench(name: str):
    """The function that runs bench ``name``."""
    return getattr(importlib.import_module(BENCHES[name]), f"bench_{name}")


def run(name: str, repeats: int = 3, progress=print, **options) -> dict:
    """One bench's report; ``options`` go to benches that take a shape (load's users)."""
    if name not in BENCHES:
        from models.base import BadInput

        raise BadInput(f"Unknown bench '{name}'. Benches: {', '.join(BENCHES)}.")
    metrics = bench(name)(repeats, progress, **options)
    return {"bench": name, "machine": machine(), "metrics": metrics}
