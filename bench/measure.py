"""What every bench shares: the machine, one metric's shape, timing, word error rate.

The per-bench modules import this and nothing of each other; bench/runner.py
names them, so there is no cycle between the runner and a bench.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

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


def share_weights(home: Path, weights: Path) -> None:
    """Point a bench's throwaway ``home`` at the real prepared ``weights``.

    Made first when missing (a home where nothing was prepared yet): a link
    to a folder that does not exist made every request fail with "cannot
    write prepared weights: File exists". Packs prepared through the link
    stay for the next run.
    """
    weights.mkdir(parents=True, exist_ok=True)
    (home / "weights").symlink_to(weights.resolve(), target_is_directory=True)
