"""bench load: many people at once against a served app, over HTTP (issue #17).

    python -m assistant bench load [--users 16] [--seconds 180] [--burst 100] [--json]

The app is started as `make run` would (`python -m assistant serve`, its own
process, a fresh ASSISTANT_HOME whose weights are this home's), on the
smallest text model with replies capped at a few tokens: the bench measures
the serving path (queues, pool, ledger), not the model's prose. Three phases:

1. steady: N simulated users, half on /v1/chat/completions and half on the
   UI's queue (Gradio's /gradio_api/call/ask), each asking again as soon as
   it is answered, for a fixed time;
2. disturbed: the same, while one long-history request and one bulk
   /v1/embeddings call (it holds the embedder as an ingest does) run; the
   p95 of the short /v1 chats should move by no more than 2x;
3. burst: B /v1 requests sent at once: each must be answered or refused
   cleanly ("busy": 429/503 with a JSON body), never a 5xx crash or a hang.

Then the server is stopped and its ledger read: every /v1 answer the client
received has exactly one finished row (requests still running when it stops,
never acknowledged, are counted apart).
Latencies are medians and 95th percentiles of wall time per request as the
client saw it; the machine is shared, so read the ratios, not the seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from assistant.settings import Settings
from bench.measure import metric

MODEL = "smollm2-135m-instruct"  # the smallest text model every install has
REPLY_TOKENS = 8
# A request not answered in this time is a hang, counted as an error. A total
# deadline, not httpx's read timeout: the UI's event stream sends heartbeats,
# so a stalled UI call never times out on reads alone.
TIMEOUT_S = 120.0
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Tally:
    """What the clients saw in one phase, per surface (v1 | ui)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: {"v1": [], "ui": []})
    busy: int = 0  # clean refusals: 429/503 with a body that says so
    errors: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # /v1 request ids the client received
    replies: list[dict] = field(default_factory=list)  # /v1 answers: text, model, notes (to read)

    def ok(self, surface: str) -> int:
        return len(self.latencies[surface])


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


# -- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, weights: Path, port: int) -> subprocess.Popen:
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "weights").exists():
        (home / "weights").symlink_to(weights)
    env = {
        **os.environ,
        "ASSISTANT_HOME": str(home),
        "GRADIO_SERVER_PORT": str(port),
        "ASSISTANT_TEXT_MODEL": MODEL,
        "ASSISTANT_MAX_NEW_TOKENS": str(REPLY_TOKENS),
    }
    log = (home / "server.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: stopped whole, never ours
    )


def stop_server(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


class RssSampler(threading.Thread):
    """The server's resident memory, sampled twice a second; peak kept."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024)


# -- the clients ---------------------------------------------------------------------------


async def within_deadline(call, tally: Tally, surface: str) -> None:
    try:
        await asyncio.wait_for(call, TIMEOUT_S)
    except TimeoutError:
        tally.errors.append(f"{surface}: no answer in {TIMEOUT_S:.0f} s")


async def ask_v1(
    client,
    base: str,
    text: str,
    user: str,
    tally: Tally,
    history=(),
    timeout=TIMEOUT_S,
    model: str = MODEL,
) -> None:
    body = {
        "model": model,
        "messages": [*history, {"role": "user", "content": text}],
        "max_tokens": REPLY_TOKENS,
        "user": user,
    }
    started = time.perf_counter()
    try:
        r = await client.post(f"{base}v1/chat/completions", json=body, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - a hang or a dropped connection is the finding
        tally.errors.append(f"v1: {type(err).__name__}")
        return
    elapsed = time.perf_counter() - started
    if r.status_code == 200:
        tally.latencies["v1"].append(elapsed)
        data = r.json()
        tally.answered.append(data["id"].removeprefix("chatcmpl-"))
        said = data["choices"][0]["message"]["content"]
        notes = (data.get("assistant") or {}).get("notes") or []
        tally.replies.append({"text": said, "model": data["model"], "notes": notes})
    elif r.status_code in (429, 503) and r.headers.get("content-type", "").startswith("appl"):
        tally.busy += 1
    else:
        tally.errors.append(f"v1: HTTP {r.status_code} {r.text[:80]}")


async def ask_ui(client, base: str, text: str, tally: Tally) -> None:
    """One call through the UI's queue, as a browser's event is: join, then read the stream."""
    started = time.perf_counter()
    try:
        r = await client.post(
            f"{base}gradio_api/call/ask", json={"data": [text, MODEL]}, timeout=TIMEOUT_S
        )
        if r.status_code != 200:
            busy = r.status_code in (429, 503)
            tally.busy += busy
            if not busy:
                tally.errors.append(f"ui: HTTP {r.status_code} {r.text[:80]}")
            return
        event_id = r.json()["event_id"]
        url = f"{base}gradio_api/call/ask/{event_id}"
        async with client.stream("GET", url, timeout=TIMEOUT_S) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event: complete"):
                    tally.latencies["ui"].append(time.perf_counter() - started)
                    return
                if line.startswith("event: error"):
                    tally.errors.append("ui: event error")
                    return
        tally.errors.append("ui: stream ended without an answer")
    except Exception as err:  # noqa: BLE001
        tally.errors.append(f"ui: {type(err).__name__}")


async def user_loop(client, base: str, n: int, until: float, tally: Tally) -> None:
    asked = 0
    while time.monotonic() < until:
        text = f"Say hello to person {n}, turn {asked}."
        if n % 2 == 0:
            await within_deadline(ask_v1(client, base, text, f"load-{n}", tally), tally, "v1")
        else:
            await within_deadline(ask_ui(client, base, text, tally), tally, "ui")
        asked += 1


async def phase(base: str, users: int, seconds: float, disturb: bool = False) -> tuple:
    """(Tally of the users, Tally of the disturbances) for one timed phase."""
    import httpx

    tally, side = Tally(), Tally()
    limits = httpx.Limits(max_connections=users + 4)
    async with httpx.AsyncClient(limits=limits) as client:
        until = time.monotonic() + seconds
        jobs = [user_loop(client, base, n, until, tally) for n in range(users)]
        if disturb:
            jobs += [long_history(client, base, side), bulk_embeddings(client, base, side)]
        await asyncio.gather(*jobs)
    return tally, side


async def long_history(client, base: str, tally: Tally) -> None:
    # 400 turns: the size that took 93-126 s each and stalled a 3-word chat (#17).
    # Routed as a person's follow-up is ("auto"): to the grounded model when its
    # pack is installed (Qwen2.5-Coder-0.5B on llama.cpp, the slowest prompt reader).
    words = " ".join(["history"] * 60)
    turns = [{"role": ("user", "assistant")[i % 2], "content": words} for i in range(400)]
    ask = ask_v1(client, base, "And now a short question?", "load-long", tally, turns, model="auto")
    await within_deadline(ask, tally, "long history")


async def bulk_embeddings(client, base: str, tally: Tally) -> None:
    await within_deadline(_embed(client, base, tally), tally, "embeddings")


async def _embed(client, base: str, tally: Tally) -> None:
    passages = [f"Passage {i} about the load bench and its users. " * 8 for i in range(400)]
    started = time.perf_counter()
    try:
        r = await client.post(f"{base}v1/embeddings", json={"input": passages}, timeout=TIMEOUT_S)
        ok = r.status_code == 200
    except Exception as err:  # noqa: BLE001
        ok, r = False, type(err).__name__
    if ok:
        tally.latencies["ui"].append(time.perf_counter() - started)  # "ui" slot: the side job
    else:
        tally.errors.append(f"embeddings: {getattr(r, 'status_code', r)}")


async def burst(base: str, count: int) -> Tally:
    import httpx

    tally = Tally()
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=count)) as client:
        await asyncio.gather(
            *(
                within_deadline(
                    ask_v1(client, base, f"Burst {n}: hi.", f"b-{n}", tally), tally, "v1"
                )
                for n in range(count)
            )
        )
    return tally


# -- the ledger ----------------------------------------------------------------------------


def ledger_check(path: Path, answered: list[str]) -> dict:
    """Every /v1 answer received has one finished row; and how many were left started."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    finished = dict(
        db.execute(
            "SELECT request_id, COUNT(*) FROM events WHERE phase = 'finished' GROUP BY request_id"
        ).fetchall()
    )
    started = {r[0] for r in db.execute("SELECT request_id FROM events WHERE phase = 'started'")}
    db.close()
    return {
        "answered": len(answered),
        "answered_without_one_row": sum(finished.get(rid, 0) != 1 for rid in answered),
        "left_started": len(started - set(finished)),
    }


# -- the bench -----------------------------------------------------------------------------


def _wait_ready(base: str, server: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}v1/models", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError("the server did not answer /v1/models within 600 s")


def bench_load(
    repeats: int, progress, users: int = 16, seconds: float = 180.0, bursts: int = 100
) -> list[dict]:
    settings = Settings.from_env()
    home = settings.home / "bench-load" / time.strftime("%Y%m%d-%H%M%S")
    port = int(os.environ.get("ASSISTANT_LOAD_PORT") or _free_port())
    base = f"http://127.0.0.1:{port}/"
    server = start_server(home, settings.weights_dir, port)
    sampler = RssSampler(server.pid)
    # A SIGTERM (timeout, Ctrl-C from a supervisor) must still stop the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        _wait_ready(base, server, home / "server.log")
        progress(f"  server up on {base}; warming {MODEL} and the follow-ups' model (not measured)")
        asyncio.run(ask_v1_once(base))
        sampler.start()
        progress(f"  steady: {users} users for {seconds:.0f} s")
        steady, _ = asyncio.run(phase(base, users, seconds))
        progress("  disturbed: the same, with a 400-turn history and 400 embeddings")
        disturbed, side = asyncio.run(phase(base, users, seconds, disturb=True))
        progress(f"  burst: {bursts} /v1 requests at once")
        burst_tally = asyncio.run(burst(base, bursts))
        for reply in side.replies:  # the long history's answer, to read
            progress(f"  long history answered by {reply['model']}: {reply['text']!r}")
            progress(f"    notes: {reply['notes']}")
    finally:
        sampler.stop.set()
        stop_server(server)
    answered = steady.answered + disturbed.answered + burst_tally.answered + side.answered
    ledger = ledger_check(home / "ledger.sqlite", answered)
    return _metrics(users, seconds, bursts, steady, disturbed, side, burst_tally, ledger, sampler)


async def ask_v1_once(base: str) -> None:
    """The first answer, however long the cold load (or a first preparation) takes."""
    import httpx

    tally = Tally()
    async with httpx.AsyncClient(timeout=900) as client:
        await ask_v1(client, base, "Hello.", "load-warm", tally, timeout=900)
        # A short follow-up loads the model the long history is routed to (the
        # grounded one, when installed), so its load is not timed either.
        said = [{"role": "user", "content": "Hello."}, {"role": "assistant", "content": "Hi."}]
        await ask_v1(client, base, "And?", "load-warm", tally, said, timeout=900, model="auto")
    if len(tally.answered) < 2:
        raise RuntimeError(f"the warm-up request was not answered: {tally.errors}")


def _metrics(users, seconds, bursts, steady, disturbed, side, burst_tally, ledger, sampler):
    base_p95 = p95(steady.latencies["v1"])
    moved = p95(disturbed.latencies["v1"]) / base_p95 if base_p95 else float("inf")
    clean = burst_tally.ok("v1") + burst_tally.busy
    out = []
    for name, t in (("steady", steady), ("disturbed", disturbed)):
        for surface in ("v1", "ui"):
            lat = t.latencies[surface] or [0.0]
            out += [
                metric(f"{name} {surface}: answered", t.ok(surface), "requests"),
                metric(f"{name} {surface}: p50", statistics.median(lat), "s"),
                metric(f"{name} {surface}: p95", p95(lat), "s"),
            ]
        out.append(metric(f"{name}: errors", len(t.errors), "requests", "0", not t.errors))
        out.append(metric(f"{name}: clean busy answers", t.busy, "requests"))
    out += [
        metric("disturbed/steady p95 of short /v1 chats", moved, "x", "<= 2", moved <= 2),
        metric(
            "long history + embeddings: errors", len(side.errors), "requests", "0", not side.errors
        ),
        # The 400-turn follow-up's wall time (0: not answered, see the errors).
        metric("long history: answered in", (side.latencies["v1"] or [0.0])[0], "s"),
        metric("bulk embeddings: answered in", (side.latencies["ui"] or [0.0])[0], "s"),
        metric(f"burst of {bursts}: answered", burst_tally.ok("v1"), "requests"),
        metric(f"burst of {bursts}: clean busy (429/503)", burst_tally.busy, "requests"),
        metric(
            f"burst of {bursts}: answered or cleanly busy",
            clean / bursts,
            "share",
            "1.0",
            clean == bursts,
        ),
        metric(f"burst of {bursts}: p95", p95(burst_tally.latencies["v1"]), "s"),
        metric("server peak RSS", sampler.peak_mb, "MB"),
        metric("ledger: /v1 answers checked", ledger["answered"], "requests"),
        metric(
            "ledger: answers without exactly one finished row",
            ledger["answered_without_one_row"],
            "requests",
            "0",
            ledger["answered_without_one_row"] == 0,
        ),
        # Informational: a request still running when the server is stopped (the
        # long history, say) is cut without its row; it was never acknowledged.
        metric("ledger: requests left started at shutdown", ledger["left_started"], "requests"),
    ]
    errors = steady.errors + disturbed.errors + side.errors + burst_tally.errors
    if errors:
        print(f"  first errors: {errors[:5]}", file=sys.stderr)
    return out
