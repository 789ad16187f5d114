"""The ``judge`` metric: a catalog text model grades an output against what was expected.

It is a model's opinion, not a measurement, and is always labelled so: LLM
judges prefer longer answers and answers in their own style, and a small
local judge is often simply wrong. Its scores are never averaged with the
measured metrics (contains, exact, wer, json), and a model never grades its
own answers (or the same weights on another runtime): those items are shown
as "not judged" and left out of the mean.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from assistant.evaluation.metrics import Metric
from models.base import BadInput, Request

SCALE = 5  # the rubric's scale: 1 (wrong) .. 5 (fully right)
RUBRIC = (
    "You are grading an answer to a question against the reference answer.\n"
    "Question: {question}\n"
    "Reference answer: {expected}\n"
    "Answer to grade: {output}\n"
    "Rate how well the answer agrees with the reference in meaning, from 1 (wrong or "
    "missing) to 5 (fully right). Ignore style and length. Reply with one line: Score: N"
)
BIAS = (
    "model-graded: a judge's opinion, not a measurement. LLM judges favour longer "
    "answers and their own style, and a small local judge is often wrong; read the "
    "items before trusting the figure"
)
SELF = "not judged: a model does not grade its own answers (self-preference bias)"
# The same weights served by another runtime share the judge's preferences.
_RUNTIME_SUFFIXES = ("-fp32", "-llamacpp", "-openai")


@dataclass(frozen=True)
class Verdict:
    score: float | None  # in [0, 1]; None when not judged or the reply held no score
    note: str  # the judge's reply (shortened), or why it did not judge


def weights_of(model_id: str) -> str:
    for suffix in _RUNTIME_SUFFIXES:
        if model_id.endswith(suffix):
            return model_id[: -len(suffix)]
    return model_id


_SCORED = re.compile(
    r"(?:score|rating|grade)\W{0,4}(\d+(?:\.\d+)?)(?:\s*(?:/|out of)\s*(\d+))?", re.I
)
_FRACTION = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+)\b", re.I)
_NUMBER = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)(?![\d.])")


def parse_score(reply: str) -> float | None:
    """The judge's grade in [0, 1], or None when its reply holds no usable grade.

    Read in order of trust: "Score: 4" (or "4/5", "8 out of 10" after it), a
    JSON object with "score", a bare fraction, then the reply's only number
    on the 1..5 scale. Out-of-scale numbers are refused, not clipped: a judge
    that answers "Score: 7" has not followed the rubric.
    """
    text = reply.strip()
    found = _SCORED.search(text) or _FRACTION.search(text)
    if found:
        value, scale = float(found.group(1)), float(found.group(2) or SCALE)
    else:
        value, scale = _json_score(text), float(SCALE)
        if value is None:
            numbers = {float(n) for n in _NUMBER.findall(text)}
            if len(numbers) != 1:
                return None
            value = numbers.pop()
    if scale <= 1 or not 1 <= value <= scale:
        return None
    return round((value - 1) / (scale - 1), 4)


def _json_score(text: str) -> float | None:
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        return None
    try:
        value = json.loads(match.group(0)).get("score")
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def _through_the_engine(output: str, expected: tuple[str, ...]) -> float:
    raise TypeError("the judge needs a model: score it through Judge.grade (engine.evaluate)")


METRIC = Metric("judge", True, True, _through_the_engine, BIAS)


class Judge:
    """Grades outputs with one judge model; ``ask`` sends a prompt and returns its reply."""

    def __init__(self, model: str, ask: Callable[[str], str]):
        self.model = model
        self.ask = ask

    def grade(self, question: str, output: str, expected: tuple[str, ...], model: str) -> Verdict:
        if weights_of(model) == weights_of(self.model):
            return Verdict(None, SELF)
        prompt = RUBRIC.format(
            question=question.strip(),
            expected=" | ".join(expected) or "(none given)",
            output=output.strip() or "(empty)",
        )
        reply = self.ask(prompt)
        score = parse_score(reply)
        said = " ".join(reply.split())[:120]
        return Verdict(score, f"judge: {said}" if score is not None else f"no score in: {said}")

    def about(self) -> dict:
        return {"model": self.model, "rubric": RUBRIC, "scale": SCALE, "bias": BIAS}


def catalog_judge(assistant, model: str) -> Judge:
    """A judge that asks a catalog text model through the real flow (ledger source ``eval``)."""
    entry = assistant.catalog.get(model)  # BadInput names an unknown id
    if "text" not in entry.tasks:
        raise BadInput(f"The judge must be a text model; {model} serves {', '.join(entry.tasks)}.")

    def ask(prompt: str) -> str:
        request = Request(
            text=prompt, model=model, task="text", session_id="eval-judge", temperature=0.0
        )
        outcome = assistant.ask(request, source="eval")
        return outcome.result.text if outcome.status == "ok" and outcome.result else ""

    return Judge(model, ask)
