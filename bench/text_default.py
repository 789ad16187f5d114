"""Which chat runtime `bench text` makes the default here: the faster, unless it answers worse.

Speed alone chose before (it saved llama.cpp here), but the runtimes'
greedy replies differ: llama.cpp's AVX-512 build sums in another order than
CTranslate2, and its weights are a Q8_0 copy of the pack's Q4_1. So each
candidate also answers bench answers' 24 factual questions
(bench/data/answers/factual.jsonl), primed as the app primes the default
chat model (``flow.primed.EXAMPLES``), greedy, judged as bench answers
judges (the first sentence holds an expected word). The faster one becomes
the default only if it got at most ``SLACK`` fewer right than the other.
The questions reuse the model the 8-chat run already loaded: ~24 short
greedy replies per runtime, well under a minute each here.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

from assistant.settings import Settings
from models.base import Request, Result

FACTUAL_TOKENS = 48  # the answer is the first sentence; a ramble after it is not judged
SLACK = 1  # answers the faster runtime may miss, of 24, and still be the default


@dataclass(frozen=True)
class Factual:
    """One runtime's factual answers: how many right, of how many, and the ones it missed."""

    right: int
    total: int
    missed: tuple[str, ...]


def factual_score(adapter) -> Factual:
    from assistant.flow.primed import EXAMPLES
    from bench.answers_inputs import _has, _load

    cases = _load("factual.jsonl")
    missed = []
    for case in cases:
        request = Request(text=case["question"], history=EXAMPLES, max_new_tokens=FACTUAL_TOKENS)
        reply = next(r for r in adapter.stream(request) if isinstance(r, Result)).text
        first = re.split(r"(?<=[.!?])\s+", reply.strip(), maxsplit=1)[0]  # as bench answers
        if not _has(first, case["expected"]):
            missed.append(f"{case['question']} → {first[:80]}")
    return Factual(len(cases) - len(missed), len(cases), tuple(missed))


def choose(decode: dict[str, float], eight: dict[str, float], factual: dict[str, Factual]) -> str:
    """The catalog id of the default chat model, from ``decode``/``eight`` (tok/s) and answers.

    ``decode`` and ``eight`` hold the product's CTranslate2 model first, then
    llama.cpp's where it ran: llama.cpp is the faster only when it wins one
    chat and eight at once; CTranslate2 stays otherwise (and stays the faster
    reader of a long new prompt either way, which the metrics show).
    """
    fast, *others = list(eight)
    if not others:
        return fast
    llama = others[0]
    wins = decode[llama] > decode[fast] and eight[llama] > eight[fast]
    faster, slower = (llama, fast) if wins else (fast, llama)
    if factual[faster].right < factual[slower].right - SLACK:
        return slower
    return faster


def remember(choice: str, decode: dict, eight: dict, factual: dict, progress) -> None:
    """Write the choice for ``flow.defaults.measured_text_default``, with what it rests on."""
    from assistant.flow.defaults import BENCH_TEXT_FILE

    settings = Settings.from_env()
    home = settings.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        (home / BENCH_TEXT_FILE).write_text(
            json.dumps(
                {
                    "text_model": choice,
                    "measured": time.strftime("%Y-%m-%d %H:%M"),
                    "decode_tok_s": {m: round(v, 1) for m, v in decode.items()},
                    "eight_chats_tok_s": {m: round(v, 1) for m, v in eight.items()},
                    "factual_right": {m: f"{f.right}/{f.total}" for m, f in factual.items()},
                    # measured with llama.cpp's threads spinning or not: the app
                    # follows this choice only under the same setting
                    "llama_spin": settings.llama_spin,
                },
                indent=1,
            )
        )
        progress(
            f"  default chat model on this machine: {choice} (saved in {home / BENCH_TEXT_FILE})"
        )
    except OSError as err:
        progress(f"  could not save the measured default ({err.strerror})")
