"""`python -m assistant bench rag`: retrieval quality, routing, answers, speed, scale.

The documents are the pydoc pages of 24 standard-library modules, rendered
by the running Python (written by CPython's authors, not by us, and present
on every machine). bench/data/rag_questions.jsonl holds 40 questions, each
with the module that answers it and a keyword the answer should contain.
Everything runs in a throwaway ASSISTANT_HOME that borrows the prepared
weights, through the same ingest, router, store and models as the app.
"""

from __future__ import annotations

import importlib
import json
import pydoc
import random
import shutil
import statistics
import time
from pathlib import Path

from assistant.settings import Settings
from bench.measure import metric, share_weights, timed
from models.base import Request

QUESTIONS = Path(__file__).with_name("data") / "rag_questions.jsonl"
SCALES = (10_000, 100_000)


def _corpus(folder: Path, modules: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in modules:
        path = folder / f"{name}.txt"
        path.write_text(pydoc.render_doc(importlib.import_module(name), renderer=pydoc.plaintext))
        paths.append(path)
    return paths


def bench_rag(repeats: int, progress) -> list[dict]:
    from assistant.flow.service import Assistant

    real = Settings.from_env()
    home = real.home / "bench-rag"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    share_weights(home, real.weights_dir)
    assistant = Assistant.from_settings(
        Settings(home=home, max_new_tokens=64), progress=lambda m: None
    )
    questions = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line]
    metrics = _ingest(assistant, home, sorted({q["module"] for q in questions}), progress)
    vectors, found = _retrieval(assistant, questions)
    metrics += found
    metrics += _routing(assistant, questions)
    metrics += _answers(assistant, questions)
    metrics += _embedding_speed(assistant, repeats, progress)
    metrics += _query_latency(assistant, home, vectors, questions, progress)
    assistant.store.close()
    shutil.rmtree(home, ignore_errors=True)
    return metrics


def _ingest(assistant, home: Path, modules: list[str], progress) -> list[dict]:
    """Every page through the product's ingest; chunks per second, the cold load included."""
    from assistant.knowledge.rag import collections_for

    progress(f"  ingesting {len(modules)} pydoc pages…")
    started = time.perf_counter()
    for path in _corpus(home / "corpus", modules):
        outcome = assistant.ingest(path)
        assert outcome.status == "ok", outcome.error
    ingest_s = time.perf_counter() - started
    chunks = sum(d.chunks for d in assistant.store.documents(collections_for("local")))
    return [
        metric(
            "ingest (read, split, embed, write; cold load included)", chunks / ingest_s, "chunks/s"
        )
    ]


def _retrieval(assistant, questions) -> tuple[list, list[dict]]:
    """(the questions' vectors, recall@5 of hybrid search against each side alone)."""
    from assistant.knowledge.rag import collections_for

    store, collections = assistant.store, collections_for("local")
    found = {"hybrid": 0, "vector": 0, "bm25": 0}
    with assistant.pool.lease(assistant.embedder_id()) as lease:
        vectors = lease.adapter.embed([q["question"] for q in questions])
    for q, vector in zip(questions, vectors, strict=True):
        want = f"{q['module']}.txt"
        hits = store.search(q["question"], vector, collections, k=5)
        found["hybrid"] += any(h.name == want for h in hits)
        near = [store.name_of(i) for i, _ in store.nearest(vector, collections, n=5)]
        found["vector"] += want in near
        lexical = [store.name_of(i) for i in store.keyword(q["question"], collections, n=5)]
        found["bm25"] += want in lexical
    n = len(questions)
    hybrid = found["hybrid"] / n
    return vectors, [
        metric("recall@5, hybrid (BM25 + vectors, RRF)", hybrid, "ratio", ">= 0.9", hybrid >= 0.9),
        metric("recall@5, vectors alone", found["vector"] / n, "ratio"),
        metric("recall@5, BM25 alone", found["bm25"] / n, "ratio"),
    ]


def _routing(assistant, questions) -> list[dict]:
    """With documents present: their questions go to rag, unrelated ones still to text."""
    to_rag = sum(
        assistant.router.route(Request(text=q["question"])).task == "rag" for q in questions
    )
    eval_set = Path(__file__).with_name("data") / "router_eval.jsonl"
    plain = [json.loads(line) for line in eval_set.read_text().splitlines() if line]
    plain = [p["text"] for p in plain if p.get("task") == "text" and not p.get("files")]
    to_text = sum(assistant.router.route(Request(text=t)).task == "text" for t in plain)
    return [
        metric("routed to rag: questions about the documents", to_rag / len(questions), "ratio"),
        metric(
            f"routed to text: {len(plain)} unrelated questions, documents present",
            to_text / len(plain),
            "ratio",
        ),
    ]


def _answers(assistant, questions) -> list[dict]:
    """Per text model that runs here: answers holding the keyword, and their time."""
    metrics, n = [], len(questions)
    weights = assistant.settings.weights_dir
    for entry in assistant.catalog.for_task("text"):
        if not (entry.built and entry.pack and entry.availability(weights)[0]):
            continue  # hub models need internet; the bench reports what runs here
        right, seconds = 0, []
        for q in questions:
            outcome = assistant.ask(Request(text=q["question"], prefer=(("text", entry.id),)))
            right += q["keyword"].lower() in (outcome.result.text if outcome.result else "").lower()
            seconds.append(outcome.run_s)
        metrics.append(metric(f"answer contains the keyword: {entry.id}", right / n, "ratio"))
        metrics.append(metric(f"answer time p50: {entry.id}", statistics.median(seconds), "s"))
    return metrics


def _embedding_speed(assistant, repeats: int, progress) -> list[dict]:
    """One chunk at a time (plain sentence-transformers loop) vs the product's path."""
    import numpy as np
    import torch

    from assistant.knowledge.rag import collections_for

    texts = assistant.store.texts(collections_for("local"), limit=96)
    with assistant.pool.lease(assistant.embedder_id()) as lease:
        adapter = lease.adapter
        model = adapter.model
        runs, reference, product = _embedding_runs(adapter, texts, repeats, progress)
    loop = statistics.median(runs["loop"])
    cosine = float(np.min(np.sum(reference * product, axis=1)))
    mode = "bf16 autocast" if adapter.bf16 else "fp32"
    # How much room is there? The loop's arithmetic rate against the fp32
    # matrix-multiply peak measured now: no fp32 path, batched or not, can
    # beat the loop by more than their ratio.
    loop_gflops = _encoder_flops(model, texts) / loop / 1e9
    peak = statistics.median(_matmul_gflops() for _ in range(repeats))
    return [
        metric("embedding: one chunk at a time (reference)", len(texts) / loop, "chunks/s"),
        metric("embedding: the loop's arithmetic rate", loop_gflops, "GFLOP/s"),
        metric(
            f"fp32 matrix-multiply peak, {torch.get_num_threads()} threads (median)",
            peak,
            "GFLOP/s",
        ),
        metric(
            "largest fp32 speed-up over the loop this CPU allows (peak / loop rate)",
            peak / loop_gflops,
            "x",
        ),
        metric(
            "embedding: batched fp32 vs loop", loop / statistics.median(runs["batched fp32"]), "x"
        ),
        metric(
            f"embedding: product path ({mode}, batched) vs loop",
            loop / statistics.median(runs["product"]),
            "x",
            ">= 5",
            loop / statistics.median(runs["product"]) >= 5,
        ),
        metric(
            f"embedding: min cosine, product path vs reference ({torch.get_num_threads()} threads)",
            cosine,
            "cosine",
            ">= 0.99",
            cosine >= 0.99,
        ),
    ]


def _embedding_runs(adapter, texts: list[str], repeats: int, progress):
    """(seconds per way, the loop's vectors, the product's vectors), ways interleaved."""
    import numpy as np

    model = adapter.model
    runs = {"loop": [], "batched fp32": [], "product": []}
    reference = product = None
    for r in range(repeats):
        progress(f"  embedding speed, run {r + 1}/{repeats}…")
        t = time.perf_counter()
        reference = np.array([model.encode([x], normalize_embeddings=True)[0] for x in texts])
        runs["loop"].append(time.perf_counter() - t)
        t = time.perf_counter()
        model.encode(texts, batch_size=adapter.batch_size, normalize_embeddings=True)
        runs["batched fp32"].append(time.perf_counter() - t)
        t = time.perf_counter()
        product = np.array(adapter.embed(texts))
        runs["product"].append(time.perf_counter() - t)
    return runs, reference, product


def _encoder_flops(model, texts: list[str]) -> float:
    """Floating-point operations to embed the texts one at a time (no padding).

    Per token, 2 per weight of the encoder's Linear layers; per layer,
    4·n·hidden more for the n×n attention scores and their use.
    """
    import torch

    weights = sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and ".encoder." in f".{name}."
    )
    config = model[0].auto_model.config
    ids = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    per_layer_attention = 4 * config.hidden_size
    return float(
        sum(
            2 * weights * len(x) + per_layer_attention * len(x) ** 2 * config.num_hidden_layers
            for x in ids
        )
    )


def _matmul_gflops(size: int = 2048) -> float:
    """This CPU's fp32 matrix-multiply rate on all torch threads: best of five."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(5))
    return 2 * size**3 / best / 1e9


def _query_latency(assistant, home: Path, vectors, questions, progress) -> list[dict]:
    """Query p50 (embed the question + hybrid search) at 10k and 100k chunks.

    The chunks are synthetic (random unit vectors, text recombined from the
    corpus): embedding 100k real chunks would take this CPU ~half an hour,
    and search time depends on the count, not on what the vectors mean.
    They go in through the store's own ``add``, as documents of 5,000 lines.
    """
    from assistant.knowledge.rag import Store, collections_for

    words = " ".join(assistant.store.texts(collections_for("local"))).split()
    store = Store(home / "scale", "synthetic")
    embed = _random_unit_vectors(len(vectors[0]))
    metrics, have = [], 0
    for size in SCALES:
        progress(f"  building {size:,} synthetic chunks…")
        t = time.perf_counter()
        while have < size:
            parsed = _synthetic_lines(words, have, min(5000, size - have))
            source = home / "scale-files" / f"synthetic-{have}.txt"
            source.parent.mkdir(parents=True, exist_ok=True)
            source.write_text("\n".join(text for text, _, _ in parsed.pieces))
            have += store.add(source, source.name, parsed, "user-local", embed)[1]
        build_s = time.perf_counter() - t
        latencies = []
        with assistant.pool.lease(assistant.embedder_id()) as lease:
            for q in questions:
                t = time.perf_counter()
                vector = lease.adapter.embed([q["question"]])[0]
                store.search(q["question"], vector, ["user-local", "shared"], k=5)
                latencies.append(time.perf_counter() - t)
        metrics.append(
            metric(
                f"query p50 at {size:,} chunks (embed + hybrid search)",
                statistics.median(latencies) * 1000,
                "ms",
            )
        )
        metrics.append(metric(f"building {size:,} chunks (synthetic vectors)", build_s, "s"))
    store.close()
    return metrics


def _synthetic_lines(words: list[str], first: int, n: int):
    """n lines of 60 corpus words each, one chunk apiece (cut to the chunk size), seeded."""
    from assistant.knowledge.documents import CHUNK_CHARS, Parsed

    return Parsed(
        "text",
        tuple(
            (
                " ".join(random.Random(first + i).sample(words, 60))[:CHUNK_CHARS],
                f"line {i + 1}",
                None,
            )
            for i in range(n)
        ),
    )


def _random_unit_vectors(dim: int):
    """An embed function of random unit vectors (seeded): search time, not meaning."""
    import numpy as np

    rng = np.random.default_rng(0)

    def embed(texts: list[str]) -> list[list[float]]:
        v = rng.standard_normal((len(texts), dim)).astype("float32")
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()

    return embed
