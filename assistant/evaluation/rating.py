"""Ranking models from pairwise votes: Bradley–Terry with bootstrap intervals.

As LMArena does: a vote is a comparison of two models on one prompt; "tie"
and "both bad" count as half a win to each. The maximum-likelihood strengths
are found by Zermelo's iteration (Hunter's MM algorithm), which needs no
optimiser library, then put on the familiar Elo-like scale (400·log10,
mean 1000). A 95 % interval comes from refitting on votes resampled with
replacement; with few votes it is wide, and the leaderboard shows that.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

OUTCOMES = ("a", "b", "tie", "both_bad")
SCALE = 400 / math.log(10)  # Elo points per unit of log-strength
PRIOR = 0.5  # a half-win against a virtual average player keeps unbeaten models finite


@dataclass(frozen=True)
class Vote:
    a: str  # catalog id shown as "A"
    b: str  # catalog id shown as "B"
    outcome: str  # "a" | "b" | "tie" | "both_bad"


@dataclass(frozen=True)
class Rating:
    model: str
    score: float  # Elo-like; differences matter, 400 points ≈ 10:1 odds
    low: float  # 2.5th percentile of the bootstrap
    high: float  # 97.5th percentile
    votes: int  # comparisons this model took part in


def strengths(
    votes: Sequence[Vote], iterations: int = 200, prior: float = PRIOR
) -> dict[str, float]:
    """Bradley–Terry log-strengths (mean 0) by the MM algorithm; prior 0 is the plain MLE."""
    models = sorted({v.a for v in votes} | {v.b for v in votes})
    if not models:
        return {}
    wins = {m: 0.0 for m in models}
    games: dict[tuple[str, str], float] = {}
    for v in votes:
        if v.outcome not in OUTCOMES:
            raise ValueError(f"unknown vote outcome {v.outcome!r}")
        share = {"a": (1.0, 0.0), "b": (0.0, 1.0)}.get(v.outcome, (0.5, 0.5))
        wins[v.a] += share[0]
        wins[v.b] += share[1]
        key = (min(v.a, v.b), max(v.a, v.b))
        games[key] = games.get(key, 0.0) + 1.0
    p = {m: 1.0 for m in models}
    for _ in range(iterations):
        new = {}
        for m in models:
            # Each model also drew one game against a virtual player of strength 1.
            denominator = 2 * prior / (p[m] + 1.0)
            for (x, y), n in games.items():
                if m in (x, y):
                    other = y if m == x else x
                    denominator += n / (p[m] + p[other])
            new[m] = (wins[m] + prior) / denominator
        p = new
    logs = {m: math.log(v) for m, v in p.items()}
    mean = sum(logs.values()) / len(logs)
    return {m: v - mean for m, v in logs.items()}


def ratings(votes: Sequence[Vote], rounds: int = 200, seed: int = 0) -> list[Rating]:
    """Every voted model, best first, with a seeded bootstrap 95 % interval."""
    if not votes:
        return []
    point = strengths(votes)
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {m: [] for m in point}
    for _ in range(rounds):
        resampled = [votes[rng.randrange(len(votes))] for _ in votes]
        fitted = strengths(resampled, iterations=100)
        for m in point:
            # A model absent from a resample has no evidence there: it sits at the mean.
            samples[m].append(fitted.get(m, 0.0))
    counts = {m: sum(m in (v.a, v.b) for v in votes) for m in point}
    out = []
    for m, s in point.items():
        ordered = sorted(samples[m])
        low = ordered[int(0.025 * (len(ordered) - 1))]
        high = ordered[int(math.ceil(0.975 * (len(ordered) - 1)))]
        out.append(Rating(m, 1000 + SCALE * s, 1000 + SCALE * low, 1000 + SCALE * high, counts[m]))
    return sorted(out, key=lambda r: -r.score)


def pareto(points: Sequence[tuple[str, float, float]], higher_is_better: bool = True) -> set[str]:
    """Names on the front of (name, score, cost): no other is better on one and no worse on both."""
    front = set()
    for name, score, cost in points:
        dominated = False
        for other, s2, c2 in points:
            if other == name:
                continue
            better_score = s2 > score if higher_is_better else s2 < score
            no_worse_score = s2 >= score if higher_is_better else s2 <= score
            if no_worse_score and c2 <= cost and (better_score or c2 < cost):
                dominated = True
                break
        if not dominated:
            front.add(name)
    return front
