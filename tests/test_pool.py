"""Residency: lazy loads, LRU eviction under a budget, one request per model at a time."""

from __future__ import annotations

import threading
import time

from assistant.flow.pool import Pool
from models.base import Adapter


class Sized(Adapter):
    def __init__(self, name: str, log: list):
        self.name, self.log = name, log

    def load(self) -> None:
        time.sleep(0.01)
        self.log.append(("load", self.name))

    def unload(self) -> None:
        self.log.append(("unload", self.name))


def make_pool(budget: float = 1000):
    log: list = []
    pool = Pool(lambda m: Sized(m, log), budget, {"a": 600, "b": 600, "c": 300})
    return pool, log


def test_a_model_loads_once_and_then_costs_no_load():
    pool, log = make_pool()
    with pool.lease("a") as first:
        assert first.load_s > 0
    with pool.lease("a") as second:
        assert second.load_s == 0.0 and second.adapter is first.adapter
    assert log == [("load", "a")]


def test_the_least_recently_used_model_is_evicted_past_the_budget():
    pool, log = make_pool(budget=1000)
    with pool.lease("a"):
        pass
    with pool.lease("c"):
        pass
    with pool.lease("a"):  # a is now more recent than c
        pass
    with pool.lease("b") as lease:  # 600 + 300 + 600 > 1000: c goes first, then a
        assert lease.evicted == ("c", "a")
    assert [m["model"] for m in pool.resident()] == ["b"]
    assert ("unload", "c") in log


def test_a_model_in_use_is_never_evicted():
    pool, log = make_pool(budget=1000)
    with pool.lease("a"):
        with pool.lease("b") as lease:  # a is busy: b loads over budget instead
            assert lease.evicted == ()
    assert {m["model"] for m in pool.resident()} == {"a", "b"}


def test_two_requests_for_one_model_take_turns():
    pool, _ = make_pool()
    with pool.lease("a"):
        pass
    queued = []

    def second():
        with pool.lease("a") as lease:
            queued.append(lease.queue_s)

    with pool.lease("a"):
        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.2)
    t.join()
    assert queued[0] >= 0.15


def test_two_models_never_load_at_the_same_time():
    """Lazy imports in heavy libraries are not thread-safe: loads take turns."""
    import threading
    import time

    from assistant.flow.pool import Pool
    from models.base import Adapter

    inside, most = [0], [0]
    lock = threading.Lock()

    class Slow(Adapter):
        def load(self):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.2)
            with lock:
                inside[0] -= 1

    pool = Pool(lambda model_id: Slow(), 10_000, {})
    leases = []

    def take(model_id):
        with pool.lease(model_id) as lease:
            leases.append(lease)

    threads = [threading.Thread(target=take, args=(m,)) for m in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(leases) == 3
    # The wait behind another model's load is queue time, not this model's load.
    assert max(lease.queue_s for lease in leases) >= 0.3
    assert all(lease.load_s < 0.35 for lease in leases)
