"""`python -m assistant bench text`: decode speed, roofline and batching of the text path.

Same weights (the SmolLM2 pack), same prompts, one run:
- decode tokens/s of the product's path (CTranslate2 int8, batched) vs a
  plain transformers fp32 ``generate``, and time to first token on a
  250-token prompt and on the next turn of that chat;
- roofline efficiency: tokens/s x bytes of weights read per token, over
  the memory bandwidth measured here in the same run;
- eight chats at once vs one: aggregate tokens/s, p95 time to first token,
  and whether each batched reply equals its prompt's reply run alone;
- decode of one chat while another process keeps one core busy, beside the
  quiet figure (ASSISTANT_LLAMA_SPIN=on is fast when quiet, slow here).
Both models are built from the catalog exactly as the app builds them.
The same pack's GGUF on llama.cpp's server (its AVX-512 build where this
CPU runs it, else xllamacpp's AVX2 build; the metrics name which) is the third
contender, for decode, roofline, first tokens and eight chats at once; the
faster is saved in ASSISTANT_HOME/bench-text.json and becomes the app's
default chat model on this machine, unless it answers bench answers' 24
factual questions worse by more than one (bench/text_default.py).
Qwen2.5-Coder-0.5B (the grounded model) is measured on llama.cpp (and on
CTranslate2 where its fp32 conversion was made: its first use, not `prepare`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.settings import Settings
from bench.measure import metric, timed
from bench.text_default import Factual, choose, factual_score, remember
from models.base import Message, Request, Result

CORES = os.cpu_count() or 1
FAST, REFERENCE = "smollm2-135m-instruct", "smollm2-135m-instruct-fp32"
LLAMA = "smollm2-135m-instruct-llamacpp"  # xllamacpp: skipped where the wheel is missing
# The grounded model, 4x bigger: memory bounds it far more
# than per-token overhead, so its roofline shows what the runtimes reach.
CODER, CODER_LLAMA = "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-0.5b-instruct-llamacpp"
NEW_TOKENS = 96
PROMPTS = [
    "Write a short story about a robot who learns to paint.",
    "Explain how a bicycle stays upright while it is moving.",
    "Describe a walk through a forest in autumn.",
    "Give advice to someone starting to learn the piano.",
    "Explain why the sky is blue to a ten-year-old.",
    "Describe how bread is made, step by step.",
    "Write a letter to a friend about a trip to the sea.",
    "Explain what a computer does when you turn it on.",
]
# ~250 tokens of context for the time-to-first-token measurement.
LONG_CONTEXT = (
    "The city library opened a new wing last spring. It has a reading room with tall "
    "windows, a children's corner with low shelves and cushions, a quiet study area, "
    "a small cafe, and a workshop where volunteers repair old books. "
) * 5 + "In two sentences, what does the new wing of the library contain?"
FOLLOW_UP = "Is there somewhere to eat?"


def memory_bandwidth_gbs(threads: int) -> float:
    """Read bandwidth: the best of five sums over a 512 MB tensor (too big for any cache)."""
    import torch

    torch.set_num_threads(threads)
    x = torch.ones(128 * 1024 * 1024)  # fp32: 512 MB
    x.sum()
    best = min(timed(x.sum) for _ in range(5))
    torch.set_num_threads(CORES)
    return x.numel() * 4 / best / 1e9


def _one(adapter, text: str, new_tokens: int = NEW_TOKENS, history: tuple = ()) -> dict:
    """Stream one reply; time to first piece, decode rate after it, the text."""
    started = time.perf_counter()
    first = None
    result = None
    for item in adapter.stream(Request(text=text, max_new_tokens=new_tokens, history=history)):
        if isinstance(item, Result):
            result = item
        elif first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    n = int(result.usage.units_out)
    first = first or end
    return {
        "ttft": first - started,
        "decode_tps": (n - 1) / (end - first) if n > 1 and end > first else 0.0,
        "tokens": n,
        "wall": end - started,
        "text": result.text,
    }


def _weights_bytes(adapter) -> int:
    """Bytes of weights read per decoded token: every matrix, once (tied embeddings once)."""
    if getattr(adapter, "gguf", None) is not None:
        return Path(adapter.gguf).stat().st_size  # the GGUF as read
    if getattr(adapter, "generator", None) is not None:
        from models.text_ct2 import CT2_DIR

        return (Path(adapter.tokenizer.name_or_path) / CT2_DIR / "model.bin").stat().st_size
    seen, total = set(), 0
    for p in adapter.model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total


def _concurrent(adapter, prompts: list[str]) -> tuple[float, list[float], list[str]]:
    """All prompts at once from their own threads: aggregate tok/s, TTFTs, replies."""
    out: list[dict | None] = [None] * len(prompts)
    barrier = threading.Barrier(len(prompts))

    def chat(i: int) -> None:
        barrier.wait()
        out[i] = _one(adapter, prompts[i])

    started = time.perf_counter()
    threads = [threading.Thread(target=chat, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return (
        sum(o["tokens"] for o in out) / wall,
        [o["ttft"] for o in out],
        [o["text"] for o in out],
    )


def _build(model_id: str):
    from assistant.catalog.backends import build_adapter
    from assistant.catalog.entries import Catalog

    adapter = build_adapter(Catalog.load().get(model_id), Settings.from_env(), lambda m: None)
    adapter.load()
    _one(adapter, "Hello!", 8)  # warm-up, not measured
    return adapter


def _decode_worker(model_id: str) -> dict:
    """One contender, alone in its process: decode rates, first-token time, weight bytes.

    Alone because CTranslate2 and torch share the OpenMP runtime: in one
    process, loading one changed the other's thread count and speed.
    """
    import torch

    torch.set_num_threads(CORES)
    adapter = _build(model_id)
    rates = [_one(adapter, text)["decode_tps"] for text in PROMPTS[:4]]
    busy = _busy_rate(adapter) if model_id in (FAST, LLAMA) else None
    long = _one(adapter, LONG_CONTEXT, 16)
    # The next turn of that chat: a runtime that keeps the chat's KV cache
    # (llama.cpp) reads only the new turn; one that does not reads it all.
    history = (Message("user", LONG_CONTEXT), Message("assistant", long["text"]))
    follow = _one(adapter, FOLLOW_UP, 16, history)["ttft"]
    n_long = len(adapter.tokenizer(LONG_CONTEXT)["input_ids"])
    return {
        "rates": rates,
        "busy": busy,
        "ttft": long["ttft"],
        "follow": follow,
        "bytes": _weights_bytes(adapter),
        "n_long": n_long,
    }


def _busy_rate(adapter) -> float:
    """Decode tok/s of one chat while another process keeps one core busy (a build, a
    video call): threads that spin at barriers (ASSISTANT_LLAMA_SPIN) lose most here."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # running before the reply starts
        return _one(adapter, PROMPTS[0])["decode_tps"]
    finally:
        hog.kill()
        hog.wait()


def _in_subprocess(model_id: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.text", "_decode_worker", model_id],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],  # `-m bench.text` resolves from the repo root
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench worker for {model_id} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class Decoding:
    """What the decode runs measured, per contender (catalog id)."""

    rates: dict[str, list[float]]  # decode tok/s, every run
    busy: dict[str, list[float]]  # decode tok/s with one core busy elsewhere (FAST, LLAMA)
    ttft: dict[str, list[float]]  # first token on the long prompt, s
    follow: dict[str, list[float]]  # first token on the next turn, s
    size: dict[str, int]  # weights bytes read per token
    n_long: int  # the long prompt's tokens (the product's tokenizer)

    def median(self, model_id: str) -> float:
        return statistics.median(self.rates[model_id])


def bench_text(repeats: int, progress) -> list[dict]:
    bw = statistics.median(memory_bandwidth_gbs(CORES) for _ in range(repeats))
    bw1 = statistics.median(memory_bandwidth_gbs(1) for _ in range(repeats))
    progress(f"  memory read bandwidth: {bw:.1f} GB/s (all cores), {bw1:.1f} GB/s (one core)")
    contenders = _contenders(progress)
    runs = _decode_runs(contenders, repeats, progress)
    med = {m: runs.median(m) for m in contenders}
    roof = {m: med[m] * runs.size[m] / 1e9 / bw for m in contenders}
    ref = med[REFERENCE]

    # Eight chats at once vs one, on the product's path, for each batching runtime.
    batched = {m: _batching(m, repeats, progress) for m in (FAST, LLAMA) if m in contenders}
    metrics = [
        metric("memory read bandwidth, all cores (median)", bw, "GB/s"),
        metric("memory read bandwidth, one core (median)", bw1, "GB/s"),
        metric("decode, transformers fp32 generate (reference, median)", ref, "tok/s"),
        metric("weights read per token, transformers fp32", runs.size[REFERENCE] / 1e6, "MB"),
        metric("roofline efficiency, transformers fp32", roof[REFERENCE], "fraction"),
    ]
    llama = _llama_build()
    for model_id, runtime, goal in ((FAST, "CTranslate2 int8", 2), (LLAMA, f"{llama} Q8_0", 5)):
        if model_id in contenders:
            metrics += _runtime_metrics(runs, model_id, runtime, goal, ref, roof, batched)
    if LLAMA in contenders:
        metrics.append(
            metric("decode speed-up, llama.cpp vs CTranslate2 int8", med[LLAMA] / med[FAST], "x")
        )
    for model_id, runtime in ((CODER, "CTranslate2 int8"), (CODER_LLAMA, f"{llama} Q4_K_M")):
        if model_id in contenders:
            metrics += _coder_metrics(runs, model_id, runtime, roof)
    decode = {m: med[m] for m in batched}
    eight = {m: b.eight for m, b in batched.items()}
    factual = {m: b.factual for m, b in batched.items()}
    remember(choose(decode, eight, factual), decode, eight, factual, progress)
    return metrics


def _llama_build() -> str:
    """Which llama.cpp build the app runs here (models/llama_native.py decides)."""
    from models.llama_native import native_server

    build = "llama.cpp AVX-512" if native_server()[0] is not None else "llama.cpp AVX2"
    # ASSISTANT_LLAMA_SPIN=on: every core decodes, threads spin between ops.
    return build + (" spinning" if Settings.from_env().llama_spin else "")


def _contenders(progress) -> list[str]:
    """The catalog ids measured: reference and product always, the others where installed."""
    from assistant.catalog.entries import Catalog
    from models.packs import is_installed, is_prepared, module_dir

    catalog = Catalog.load()
    llama = module_dir("xllamacpp") is not None
    coder = is_installed(catalog.get(CODER).pack)
    # CTranslate2 needs the coder converted through fp32 (2.5 GB, minutes):
    # measured only where `prepare` already did it, never as part of the bench.
    coder_ct2 = coder and is_prepared(catalog.get(CODER).pack, Settings.from_env().weights_dir)
    if not llama:
        progress("  xllamacpp not installed (pip install -r requirements.txt): not measured")
    if not coder:
        progress("  coder pack not installed (requirements-packs.txt): not measured")
    return (
        [REFERENCE, FAST]
        + [LLAMA] * llama
        + [CODER] * coder_ct2
        + [CODER_LLAMA] * (coder and llama)
    )


def _decode_runs(contenders: list[str], repeats: int, progress) -> Decoding:
    """Each contender in its own subprocess, ``repeats`` times, the order alternating."""
    rates, busy, ttft, follow = ({m: [] for m in contenders} for _ in range(4))
    size: dict[str, int] = {}
    n_long = 0
    for r in range(repeats):
        # Alternate the order so drift on a shared machine hits all alike.
        for model_id in contenders[::-1] if r % 2 else contenders:
            got = _in_subprocess(model_id)
            rates[model_id].extend(got["rates"])
            busy[model_id] += [got["busy"]] if got["busy"] is not None else []
            ttft[model_id].append(got["ttft"])
            follow[model_id].append(got["follow"])
            size[model_id] = got["bytes"]
            if model_id == FAST:  # the coder's tokenizer counts the same prompt differently
                n_long = got["n_long"]
        progress(
            f"  repeat {r + 1}: decode "
            + ", ".join(f"{m} {statistics.median(rates[m][-4:]):.1f}" for m in contenders)
            + " tok/s"
        )
    return Decoding(rates, busy, ttft, follow, size, n_long)


def _runtime_metrics(runs: Decoding, model_id, runtime, goal, ref, roof, batched) -> list[dict]:
    """One runtime of the product's model: decode, first tokens, roofline, eight chats."""
    med, ttft, follow = runs.median(model_id), runs.ttft[model_id], runs.follow[model_id]
    b = batched[model_id]
    one_m, eight_m, p95 = b.one, b.eight, b.p95
    return [
        metric(f"decode, {runtime} (median)", med, "tok/s"),
        metric(
            f"decode speed-up, {runtime} vs transformers fp32",
            med / ref,
            "x",
            f">= {goal}",
            med / ref >= goal,
        ),
        metric(
            f"time to first token, {runs.n_long}-token prompt, {runtime} (median)",
            statistics.median(ttft),
            "s",
            "<= 1.0",
            statistics.median(ttft) <= 1.0,
        ),
        metric(
            f"time to first token, the next turn of that chat, {runtime} (median)",
            statistics.median(follow),
            "s",
            "<= 0.2",
            statistics.median(follow) <= 0.2,
        ),
        metric(
            f"decode with one core busy elsewhere, {runtime} (median)",
            statistics.median(runs.busy[model_id]),
            "tok/s",
        ),
        metric(
            f"decode with one core busy vs quiet, {runtime}",
            statistics.median(runs.busy[model_id]) / med,
            "x",
        ),
        metric(f"weights read per token, {runtime}", runs.size[model_id] / 1e6, "MB"),
        metric(f"roofline efficiency, {runtime}", roof[model_id], "fraction"),
        metric(f"one chat alone, aggregate, {runtime} (median)", one_m, "tok/s"),
        metric(f"8 concurrent chats, aggregate, {runtime} (median)", eight_m, "tok/s"),
        metric(f"8 concurrent vs 1, {runtime}", eight_m / one_m, "x", ">= 3", eight_m / one_m >= 3),
        metric(
            f"p95 time to first token, 8 concurrent, {runtime} (median)", p95, "s", "<= 2", p95 <= 2
        ),
        metric(
            f"replies identical to the same prompt alone, 8 concurrent, {runtime} (worst run)",
            b.same,
            f"of {len(PROMPTS)}",
        ),
        metric(
            f"factual questions right, primed, {runtime} (the default's quality gate)",
            b.factual.right,
            f"of {b.factual.total}",
        ),
    ]


def _coder_metrics(runs: Decoding, model_id: str, runtime: str, roof: dict) -> list[dict]:
    aim = (">= 0.6", roof[model_id] >= 0.6) if model_id == CODER_LLAMA else (None, None)
    return [
        metric(f"decode, Qwen2.5-Coder-0.5B, {runtime} (median)", runs.median(model_id), "tok/s"),
        metric(
            f"weights read per token, Qwen2.5-Coder-0.5B, {runtime}",
            runs.size[model_id] / 1e6,
            "MB",
        ),
        metric(
            f"roofline efficiency, Qwen2.5-Coder-0.5B, {runtime}", roof[model_id], "fraction", *aim
        ),
    ]


@dataclass(frozen=True)
class Batched:
    """One batching runtime of the product's model: eight chats vs one, and its answers."""

    one: float  # one chat alone, tok/s (median)
    eight: float  # 8 chats at once, aggregate tok/s (median)
    p95: float  # p95 first token of the 8 (median), s
    same: int  # replies identical to the same prompt alone (worst run)
    factual: Factual  # the quality gate of the default's choice (bench/text_default.py)


def _batching(model_id: str, repeats: int, progress) -> Batched:
    adapter = _build(model_id)
    try:
        solo_replies = [_one(adapter, p)["text"] for p in PROMPTS]
        one, eight, p95s, same = [], [], [], []
        for _ in range(repeats):
            one.append(_concurrent(adapter, PROMPTS[:1])[0])
            agg, ttfts, replies = _concurrent(adapter, PROMPTS)
            eight.append(agg)
            p95s.append(sorted(ttfts)[int(0.95 * (len(ttfts) - 1) + 0.5)])
            same.append(sum(a == b for a, b in zip(replies, solo_replies, strict=True)))
        factual = factual_score(adapter)
    finally:
        adapter.unload()
    one_m, eight_m = statistics.median(one), statistics.median(eight)
    progress(
        f"  {model_id}: 8 chats at once {eight_m:.1f} tok/s aggregate vs {one_m:.1f} for one chat;"
        f" factual questions {factual.right}/{factual.total} right"
    )
    for miss in factual.missed:
        progress(f"    ✗ {miss}")
    return Batched(one_m, eight_m, statistics.median(p95s), min(same), factual)


if __name__ == "__main__" and sys.argv[1:2] == ["_decode_worker"]:
    print(json.dumps(_decode_worker(sys.argv[2])))
