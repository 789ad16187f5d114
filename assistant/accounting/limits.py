"""What a user or session may still do: request rate, daily $ quota, session budget.

- Rate (ASSISTANT_RATE_LIMIT): at most N requests per user in any 60 s,
  kept in memory: a restart forgets the last minute, the right amount to forget.
- Daily quota (ASSISTANT_DAILY_QUOTA_USD) and session budget
  (ASSISTANT_SESSION_BUDGET_USD): summed from the ledger, so they survive restarts.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import replace

from models.base import BudgetExceeded, RateLimited, Refused, Request

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self, per_minute: float | None, clock: Callable[[], float] = time.monotonic):
        self.per_minute = per_minute  # None: no limit
        self.clock = clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, user: str) -> None:
        """Count one request for ``user``, or raise RateLimited saying when to retry."""
        if self.per_minute is None:
            return
        now = self.clock()
        with self._lock:
            seen = self._seen[user]
            while seen and now - seen[0] >= WINDOW_S:
                seen.popleft()
            if len(seen) >= self.per_minute:
                wait = WINDOW_S - (now - seen[0])
                raise RateLimited(
                    f"Too many requests: {len(seen)} in the last minute, the limit is "
                    f"{self.per_minute:g} (ASSISTANT_RATE_LIMIT). Try again in {wait:.0f} s."
                )
            seen.append(now)


def check_daily_quota(settings, ledger, user: str) -> None:
    """Refuse once ``user`` has spent the day's quota (UTC day, as the ledger's timestamps)."""
    quota = settings.daily_quota_usd
    if quota is None:
        return
    midnight = time.time() // 86400 * 86400
    spent = ledger.user_spend(user, midnight)
    if spent >= quota:
        raise BudgetExceeded(
            f"'{user}' has spent ${spent:.4g} today, the daily quota of ${quota:.4g} "
            "(ASSISTANT_DAILY_QUOTA_USD). It resets at midnight UTC."
        )


def within_session_budget(settings, ledger, catalog, request: Request, decision):
    """Refuse past the session's cap; near it, move to the smallest model for the task."""
    cap = settings.session_budget_usd
    if cap is None:
        return decision
    spent = ledger.session_spend(request.session_id)
    if spent >= cap:
        raise BudgetExceeded(
            f"This session has spent ${spent:.4g} of its ${cap:.4g} budget, so this request "
            "was not run. Start a new session, or raise ASSISTANT_SESSION_BUDGET_USD."
        )
    if spent < 0.8 * cap or request.model or dict(request.prefer).get(decision.task):
        return decision  # far from the cap, or the person chose the model
    weights = settings.weights_dir
    usable = [e for e in catalog.for_task(decision.task) if e.built and e.availability(weights)[0]]
    smallest = min(usable, key=lambda e: e.memory_mb, default=None)
    if smallest is None or smallest.id == decision.model:
        return decision
    reason = (
        f"{decision.reason}; budget {spent / cap:.0%} used → smaller model "
        f"{smallest.id} instead of {decision.model}"
    )
    return replace(decision, model=smallest.id, reason=reason)


def check_public(settings, task: str, backend: str = "") -> None:
    """On a public server every picture must pass an NSFW checker.

    Only the diffusers models load one (models/image_diffusers.py, which
    refuses itself when it cannot); the demo model has none, so it is off.
    """
    if settings.public and task in ("image_generation", "image_edit") and backend != "diffusers":
        raise Refused(
            "Image generation is off on this public server: every generated picture must pass "
            "an NSFW check, and this model has no checker. Ask the operator, or run the "
            "assistant yourself (ASSISTANT_PUBLIC unset)."
        )
