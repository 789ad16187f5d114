"""bench load's own arithmetic and its ledger check (the bench itself runs a server)."""

import pytest

from assistant.accounting.ledger import Finished, Ledger, Started
from bench.load import Tally, ledger_check, p95


def test_p95_is_the_inclusive_95th_percentile():
    assert p95(list(range(1, 21))) == pytest.approx(19.05)
    assert p95([3.0]) == 3.0 and p95([]) == 0.0


def test_a_tally_counts_answers_per_surface():
    tally = Tally()
    tally.latencies["v1"] += [0.1, 0.2]
    assert tally.ok("v1") == 2 and tally.ok("ui") == 0


def _start(ledger, rid):
    ledger.start(Started(rid, "s", "api", "text", "m", "pinned", 1.0))


def test_the_ledger_check_finds_missing_rows_and_requests_left_started(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for rid in ("a", "b", "c"):
        _start(ledger, rid)
    ledger.finish(Finished("a", "ok"))
    ledger.finish(Finished("b", "ok"))
    # "a" and "b" were answered and have their rows; "x" was answered with no row;
    # "c" was started and never finished.
    assert ledger_check(tmp_path / "ledger.sqlite", ["a", "b"]) == {
        "answered": 2,
        "answered_without_one_row": 0,
        "left_started": 1,
    }
    assert ledger_check(tmp_path / "ledger.sqlite", ["a", "x"])["answered_without_one_row"] == 1
