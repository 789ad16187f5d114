"""Model residency: lazy loading, one lock per model, a memory budget, LRU eviction.

The pool is the only place that holds loaded models. A request asks for a
model by catalog id and gets it back with how long it waited (queue) and
how long loading took (load, zero when it was already resident), so the
ledger can charge a cold load to the request that paid for it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

from models.base import Adapter, ModelUnavailable

# Builds an adapter (not yet loaded) for a catalog id.
Factory = Callable[[str], Adapter]
# After a runtime failed to start, requests go straight to its fallback for
# this long before it is tried again (a port may be freed, a wheel installed).
RETRY_S = 60.0


@dataclass(frozen=True)
class Loading:
    """A stream item: the step's model is not resident and loads now (its first use, or
    after it was unloaded), so the person is told why nothing has come yet."""

    model: str  # catalog id
    name: str  # what a person reads (the catalog's name)
    size_mb: int  # on disk: what is read


def loading_text(item: Loading) -> str:
    """'Loading SmolLM2-135M-Instruct (98 MB)…': what a person reads while it loads."""
    name = item.name.split(" (")[0]  # the runtime in brackets means nothing to them
    size = f" ({item.size_mb:,} MB)" if item.size_mb else ""
    return f"Loading {name}{size}…"


@dataclass
class Lease:
    adapter: Adapter
    queue_s: float  # waited for the model's lock (another request was using it)
    load_s: float  # spent loading weights for this request
    evicted: tuple[str, ...]  # models unloaded to make room
    model: str = ""  # the catalog id serving: the one asked for, or its fallback
    fallback_reason: str = ""  # why the one asked for could not start (empty: it did)


class Pool:
    def __init__(
        self,
        factory: Factory,
        memory_budget_mb: float,
        sizes: dict[str, int],
        fallbacks: dict[str, str] | None = None,
        log: Callable[[str], None] = print,
    ):
        self.factory = factory
        self.fallbacks = fallbacks or {}  # catalog id -> id to serve when it cannot start
        self.log = log
        self._failed: dict[str, tuple[float, str]] = {}  # id -> (when, why) it failed to start
        self.budget_mb = memory_budget_mb
        self.sizes = sizes  # catalog id -> resident MB
        self._loaded: OrderedDict[str, Adapter] = OrderedDict()  # LRU order, oldest first
        self._locks: dict[str, threading.Lock] = {}
        self._users: dict[str, int] = {}  # concurrent_safe models: leases open now
        self._guard = threading.Lock()  # protects the dicts above
        # One load at a time: loads compete for the same cores and disk anyway,
        # and heavy libraries import lazily in ways that are not thread-safe
        # (two first loads at once raised "cannot import name
        # 'AutoModelForCausalLM' from 'transformers'" in a side-by-side compare).
        self._loading = threading.Lock()

    def _lock_for(self, model_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(model_id, threading.Lock())

    @contextmanager
    def lease(self, model_id: str) -> Iterator[Lease]:
        """Hold ``model_id`` loaded for the duration of the block, or its fallback.

        When a model with a fallback (another runtime for the same weights)
        fails to load with ModelUnavailable, the fallback serves instead and
        the lease says why; for ``RETRY_S`` the failed one is not tried again.
        """
        fallback = self.fallbacks.get(model_id)
        with ExitStack() as stack:
            failed = self._failed.get(model_id)
            if fallback and failed and time.monotonic() - failed[0] < RETRY_S:
                lease = stack.enter_context(self._lease(fallback))
                lease = replace(lease, model=fallback, fallback_reason=failed[1])
            else:
                try:
                    lease = stack.enter_context(self._lease(model_id))
                except ModelUnavailable as err:
                    if not fallback:
                        raise
                    self._failed[model_id] = (time.monotonic(), str(err))
                    self.log(
                        f"Warning: {model_id} could not start ({err}); {fallback} serves instead."
                    )
                    lease = stack.enter_context(self._lease(fallback))
                    lease = replace(lease, model=fallback, fallback_reason=str(err))
                else:
                    self._failed.pop(model_id, None)
            yield lease

    @contextmanager
    def _lease(self, model_id: str) -> Iterator[Lease]:
        """Hold ``model_id`` loaded for the duration of the block.

        Exclusively, unless the adapter is ``concurrent_safe`` (it batches
        or serialises internally): then the lock covers only the load, and
        a count of users keeps the model from being evicted while in use.
        """
        lock = self._lock_for(model_id)
        waited = time.perf_counter()
        lock.acquire()
        shared = False
        try:
            queue_s = time.perf_counter() - waited
            with self._guard:
                adapter = self._loaded.get(model_id)
                if adapter is not None:
                    self._loaded.move_to_end(model_id)
            load_s, evicted = 0.0, ()
            if adapter is None:
                waited = time.perf_counter()
                with self._loading:
                    queue_s += time.perf_counter() - waited  # behind another model's load
                    evicted = self._make_room(model_id)
                    started = time.perf_counter()
                    adapter = self.factory(model_id)
                    adapter.load()
                    load_s = time.perf_counter() - started
                with self._guard:
                    self._loaded[model_id] = adapter
            if adapter.concurrent_safe:
                with self._guard:
                    self._users[model_id] = self._users.get(model_id, 0) + 1
                shared = True
                lock.release()
            yield Lease(adapter, queue_s, load_s, evicted, model_id)
        finally:
            if shared:
                with self._guard:
                    self._users[model_id] -= 1
            else:
                lock.release()

    def _make_room(self, model_id: str) -> tuple[str, ...]:
        """Unload least recently used models until ``model_id`` fits the budget.

        A model that is in use (its lock held) is never evicted; if nothing
        can go, the new model loads anyway: refusing would fail the request
        for a budget that is an estimate.
        """
        need = self.sizes.get(model_id, 0)
        evicted = []
        with self._guard:
            for other in list(self._loaded):
                if self._resident_mb() + need <= self.budget_mb:
                    break
                other_lock = self._locks[other]
                if self._users.get(other, 0) == 0 and other_lock.acquire(blocking=False):
                    try:
                        self._loaded.pop(other).unload()
                        evicted.append(other)
                    finally:
                        other_lock.release()
        if evicted:
            import gc

            gc.collect()
        return tuple(evicted)

    def _resident_mb(self) -> float:
        return sum(self.sizes.get(m, 0) for m in self._loaded)

    def is_loaded(self, model_id: str) -> bool:
        with self._guard:
            return model_id in self._loaded

    def resident(self) -> list[dict]:
        """What is loaded now, most recently used last."""
        with self._guard:
            return [
                {"model": m, "memory_mb": self.sizes.get(m, 0), "device": a.device}
                for m, a in self._loaded.items()
            ]
