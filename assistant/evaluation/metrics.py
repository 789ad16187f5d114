"""How an output is scored against what was expected, one number per item.

Each metric maps (output, expected) to a score in [0, 1] except ``wer``,
which is the word error rate (lower is better, and can pass 1 when a model
babbles). A run's score is the mean of its items' scores. ``judge`` (a
model grading another) lives with the engine, not here: it is a model's
opinion, shown apart from these measurements and never averaged with them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from models.base import BadInput


@dataclass(frozen=True)
class Metric:
    """A scoring rule, named as the CLI and the UI name it."""

    name: str
    higher_is_better: bool  # False for error rates
    needs_expected: bool  # a dataset line without `expected` cannot be scored
    score: Callable[[str, tuple[str, ...]], float]
    about: str  # one line for the help text and the results table


def _fold(text: str) -> str:
    """Case, accents' width forms and runs of whitespace do not make an answer wrong."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(text.split())


def contains(output: str, expected: tuple[str, ...]) -> float:
    """1 when an expected string stands in the output as whole words.

    Whole words, because reading real answers showed "0" found inside
    "0.98 degrees" and "Paris" inside "Parisian": a substring test scores
    wrong answers right.
    """
    out = _fold(output)
    for e in expected:
        if e.strip():
            word = re.escape(_fold(e))
            if re.search(rf"(?<!\w){word}(?!\w|[.,]\d)", out):
                return 1.0
    return 0.0


def exact(output: str, expected: tuple[str, ...]) -> float:
    # A trailing full stop is how chat models end sentences, not a different answer.
    out = _fold(output).rstrip(" .!")
    return float(any(out == _fold(e).rstrip(" .!") for e in expected))


_PUNCT = re.compile(r"[^\w\s']")
# Whisper writes "platform 4" where a reference says "platform four": the
# same words. Small numbers are spelled out before counting (as Whisper's
# English normaliser does, in the other direction).
_NUMBERS = dict(
    enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
)


def words(text: str) -> list[str]:
    """Words as a WER counts them: folded, punctuation dropped, small numbers spelled out."""
    out = []
    for word in _PUNCT.sub(" ", _fold(text)).split():
        out.append(_NUMBERS.get(int(word), word) if word.isascii() and word.isdigit() else word)
    return out


def wer(output: str, expected: tuple[str, ...]) -> float:
    """Word error rate against the best-matching reference: (S + D + I) / reference words."""
    hypothesis = words(output)
    rates = []
    for reference in expected:
        ref = words(reference)
        if not ref:
            rates.append(0.0 if not hypothesis else 1.0)
            continue
        rates.append(edit_distance(ref, hypothesis) / len(ref))
    return min(rates) if rates else 1.0


def edit_distance(a: list[str], b: list[str]) -> int:
    """Levenshtein distance between two word lists (substitution, deletion, insertion cost 1)."""
    previous = list(range(len(b) + 1))
    for i, word in enumerate(a, start=1):
        current = [i]
        for j, other in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other))
            )
        previous = current
    return previous[-1]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def json_keys(output: str, expected: tuple[str, ...]) -> float:
    """1 when the output is a JSON object holding every expected key.

    One fenced ```json block is accepted as the output, since chat models
    fence JSON by habit; prose around a bare object is not.
    """
    text = output.strip()
    fenced = _FENCE.fullmatch(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except ValueError:
        return 0.0
    if not isinstance(value, dict):
        return 0.0
    return float(all(key in value for key in expected))


METRICS = {
    m.name: m
    for m in (
        Metric(
            "contains",
            True,
            True,
            contains,
            "the output contains an expected string as whole words, case aside",
        ),
        Metric("exact", True, True, exact, "the output is an expected string, case aside"),
        Metric("wer", False, True, wer, "word error rate against the reference transcript"),
        Metric(
            "json",
            True,
            False,
            json_keys,
            "the output parses as a JSON object with the expected keys",
        ),
    )
}


def metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise BadInput(f"Unknown metric '{name}'; choose one of {', '.join(METRICS)}.") from None
