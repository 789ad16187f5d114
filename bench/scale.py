"""Short chats through one replica, and through two behind nginx, side by side in one run.

    python -m assistant bench scale --json

The set-up of docs/scaling.md on loopback (bench/stack.py): a model
endpoint with fake models (a second instance of this app), two replicas
(`python -m assistant serve`) and nginx with deploy/nginx/assistant.conf.
The model answers at once, so what is measured is what the app and the
proxy add per request under concurrent load: routing, the ledger's two
rows, the call to the endpoint, the HTTP hops. Rounds alternate between the
two set-ups, so load from elsewhere on the machine falls on both alike.
On a machine with few cores the replicas share them: two replicas can only
win where one is held back by something other than CPU (its thread pool,
a lock, the ledger's writes), which is what this shows.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.measure import metric
from bench.stack import TEXT_MODEL, Stack, nginx_missing

CLIENTS = 8  # people chatting at once
CHATS_PER_CLIENT = 5  # short chats each, per round


def bench_scale(repeats: int, progress) -> list[dict]:
    from models.base import ModelUnavailable

    if nginx_missing():
        raise ModelUnavailable(f"bench scale needs nginx: {nginx_missing()}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, Stack(Path(tmp)) as stack:
        progress("  starting the endpoint, two replicas and nginx…")
        endpoint = stack.endpoint()
        a, b = stack.replica("a", endpoint), stack.replica("b", endpoint)
        proxy = stack.nginx([a, b])
        stack.wait("endpoint", "a", "b", "nginx", timeout_s=240)
        setups = {"one replica": a.url, "two replicas behind nginx": proxy.url}
        for url in (a.url, b.url):  # the first request of each pays its one-off costs
            _chat(url, "warm up")
        seconds: dict[str, list[float]] = {name: [] for name in setups}
        walls: dict[str, list[float]] = {name: [] for name in setups}
        for round_ in range(repeats):
            for name, url in setups.items():
                started = time.perf_counter()
                seconds[name] += _round(url)
                walls[name].append(time.perf_counter() - started)
                progress(f"  round {round_ + 1}/{repeats}, {name}: {walls[name][-1]:.1f} s")
    metrics = []
    for name, times in seconds.items():
        p50, p95 = _percentile(times, 50), _percentile(times, 95)
        rate = CLIENTS * CHATS_PER_CLIENT / statistics.median(walls[name])
        metrics += [
            metric(f"{name}: short chat p50 ({CLIENTS} clients at once)", p50, "s"),
            metric(f"{name}: short chat p95", p95, "s"),
            metric(f"{name}: throughput", rate, "chats/s"),
        ]
    one, two = (statistics.median(walls[n]) for n in setups)
    metrics.append(metric("two behind nginx vs one: throughput ratio", one / two, "x"))
    return metrics


def _round(url: str) -> list[float]:
    """Seconds of each short chat, CLIENTS at once, each chatting CHATS_PER_CLIENT times."""

    def client(i: int) -> list[float]:
        return [_timed_chat(url, f"client {i} says hello {n}") for n in range(CHATS_PER_CLIENT)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [s for times in pool.map(client, range(CLIENTS)) for s in times]


def _timed_chat(url: str, text: str) -> float:
    started = time.perf_counter()
    _chat(url, text)
    return time.perf_counter() - started


def _chat(url: str, text: str) -> None:
    import httpx

    body = {"model": TEXT_MODEL, "messages": [{"role": "user", "content": text}]}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120)
    if reply.status_code != 200:
        raise RuntimeError(f"{url} answered HTTP {reply.status_code}: {reply.text[:300]}")


def _percentile(values: list[float], q: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]
