"""The benches import cleanly, use only public interfaces, and their small helpers work.

The benches themselves need the real weights and minutes; these checks need neither.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from bench import measure, runner
from models.base import BadInput

BENCH = Path(runner.__file__).parent
ROOT = BENCH.parent


def test_every_bench_imports_without_torch_and_names_its_function():
    script = (
        "import sys\n"
        "from bench import runner\n"
        "found = [runner.bench(name) for name in runner.BENCHES]\n"
        "assert all(callable(f) for f in found)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"  # imports are cheap: torch loads when a bench runs


def test_an_unknown_bench_is_refused_with_the_list():
    with pytest.raises(BadInput, match="Benches: answers, asr"):
        runner.run("nope")


def _modules():
    return [(p, ast.parse(p.read_text())) for p in sorted(BENCH.glob("*.py"))]


def test_no_bench_imports_the_runner():
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and path.name != "runner.py":
                assert node.module != "bench.runner", path.name
                assert not (node.module == "bench" and "runner" in {a.name for a in node.names})


def test_benches_reach_for_no_private_state():
    """No ``thing._name`` on another object, no ``_name`` imported from the product."""
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                mine = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
                assert mine or node.attr.startswith("__"), f"{path.name}:{node.lineno} .{node.attr}"
            if isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("bench"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name}:{node.lineno} imports {private}"


def test_word_error_rate_counts_edits_over_the_reference():
    assert measure.wer("the cat sat down", "the cat sat down") == 0
    assert measure.wer("the cat sat down", "the cat sat town") == pytest.approx(0.25)
    assert measure.wer("the cat sat down", "cat sat down") == pytest.approx(0.25)
    assert measure.metric("x", 1.23456, "s", "<= 2", True)["value"] == 1.2346


def test_router_accuracy_is_right_over_all_cases():
    from bench.router import _accuracy

    assert _accuracy({"text": [True, False], "asr": [True, True]}) == (0.75, 4)


def test_synthetic_lines_are_one_chunk_each_and_the_store_takes_them(tmp_path):
    from assistant.knowledge.documents import chunk
    from assistant.knowledge.rag import Store
    from bench.rag import _random_unit_vectors, _synthetic_lines

    words = [f"word{i}lengthy" for i in range(400)]  # long words: lines are cut to a chunk
    parsed = _synthetic_lines(words, 0, 40)
    assert len(chunk(parsed, "doc")) == 40
    assert parsed == _synthetic_lines(words, 0, 40)  # seeded
    embed = _random_unit_vectors(8)
    vectors = embed(["a", "b"])
    assert all(sum(x * x for x in v) == pytest.approx(1.0, abs=1e-5) for v in vectors)
    source = tmp_path / "synthetic.txt"
    source.write_text("\n".join(text for text, _, _ in parsed.pieces))
    store = Store(tmp_path / "store", "synthetic")
    try:
        assert store.add(source, source.name, parsed, "user-local", embed)[1] == 40
        texts = store.texts(["user-local"])
        assert sorted(texts) == sorted(t for t, _, _ in parsed.pieces)
        assert store.texts(["user-local"], limit=5) == texts[:5]
        assert store.texts(["shared"]) == []
    finally:
        store.close()


def test_tune_metrics_hold_their_goals():
    from bench.tune import _tune_metrics

    card = {
        "training": {
            "seconds": 300,
            "seconds_per_step": 2.0,
            "tokens_per_s": 900.0,
            "val_loss_before": 2.0,
            "val_loss_after": 1.5,
        },
        "cost": {"usd_local": 0.01, "usd_cloud": None},
        "data": {"train": 43, "general_replayed": 40},
    }
    shape = {"models": [{"score": 0.1}, {"score": 0.9}]}
    facts = {"models": [{"score": 0.75, "n": 24}, {"score": 0.5, "n": 24}]}
    rows = {m["name"]: m for m in _tune_metrics(card, shape, facts, 1.0)}
    assert rows["taught JSON shape on 20 unseen prompts, tuned"]["met"] is True
    assert rows["factual questions right, tuned"]["met"] is False  # 12 is 6 below 18
    assert rows["hosted fine-tuning job for the same tokens"]["value"] == 0
    time = "training wall time (43 examples + 40 general replies kept, 3 epochs, LoRA r16)"
    assert rows[time]["value"] == 5.0 and rows[time]["met"] is True


def test_asr_memo_contenders_pass_only_options_faster_whisper_takes():
    """bench/asr_memos.py must fail loudly, not measure a typo: every option is a
    keyword of WhisperModel.transcribe (or says how the model loads: LOADING)."""
    import inspect

    from faster_whisper import WhisperModel

    from bench.asr_memos import CONTENDERS, LOADING

    takes = set(inspect.signature(WhisperModel.transcribe).parameters)
    for name, (folder, options) in CONTENDERS.items():
        unknown = set(options) - takes - LOADING
        assert not unknown, f"{name}: {unknown}"
        assert folder.endswith("-ct2"), name  # a prepared CTranslate2 folder


def test_a_bench_home_links_weights_that_are_not_prepared_yet(tmp_path):
    from bench.measure import share_weights

    home, weights = tmp_path / "bench-home", tmp_path / "home" / "weights"
    home.mkdir()
    share_weights(home, weights)  # a fresh ASSISTANT_HOME: nothing prepared there yet
    (home / "weights" / "pack").mkdir()  # what preparing through the link writes
    assert (weights / "pack").is_dir()
