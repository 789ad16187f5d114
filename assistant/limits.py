"""Per-user request rate: at most N requests in any 60 seconds (ASSISTANT_RATE_LIMIT).

The daily $ quota is read from the ledger (Assistant._within_limits); this
is the part with state of its own, kept in memory: a restart forgets the
last minute, which is the right amount to forget.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable

from models.base import RateLimited

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
