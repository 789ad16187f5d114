"""The Costs tab's data: routed requests only, totals that add up, exports inside home."""

from __future__ import annotations

import json

import pytest

from assistant.web.ui.costs import export, finished_frame, readable, time_format, totals
from models.base import Request


@pytest.fixture
def used(assistant):
    for text in ("What is one plus one?", "Name two rivers", "Count to three"):
        assistant.ask(Request(text=text))
    assistant.ask(Request(text=""))  # rejected before routing
    assistant.ask(Request(text="hi", model="gpt-9"))  # rejected: unknown model
    return assistant


def test_only_routed_requests_are_plotted(used):
    frame = finished_frame(used)
    assert list(frame["model"].unique()) == ["smollm2-135m-instruct"]
    assert len(frame) == 3 and set(frame["family"]) == {"text"}


def test_totals_add_up_and_the_saving_is_cloud_minus_here(used):
    frame = finished_frame(used)
    row = totals(frame, "model").iloc[0]
    assert row["requests"] == 3
    assert row["usd_local"] == pytest.approx(frame["usd_local"].sum(), abs=1e-6)
    assert row["saving_usd"] == pytest.approx(row["usd_cloud"] - row["usd_local"], abs=1e-6)


def test_the_totals_tables_read_like_money(used):
    shown = readable(totals(finished_frame(used), "model")).iloc[0]
    assert shown["$ here"].startswith("$") and "e-" not in shown["$ here"]
    assert shown["device seconds"].replace(",", "").replace(".", "").isdigit()
    assert "saved (cloud − here)" in shown.index and "usd_local" not in shown.index
    assert readable(totals(finished_frame(used), "family")).columns[0] == "family"


def test_an_empty_ledger_gives_empty_tables(assistant):
    assert finished_frame(assistant).empty and totals(finished_frame(assistant), "model").empty


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_exports_hold_every_row_and_stay_inside_home(used, kind):
    path = export(used, kind)
    assert path.startswith(str(used.settings.home / "exports"))
    text = open(path).read()
    if kind == "json":
        assert len(json.loads(text)) == 5  # rejected requests are exported too
    else:
        assert len(text.strip().splitlines()) == 1 + 5


def test_the_time_axis_is_as_fine_as_the_requests_span():
    import pandas as pd

    at = pd.to_datetime([1_764_812_400, 1_764_812_430], unit="s")  # 30 s apart
    assert time_format(pd.Series(at)) == "%H:%M:%S"  # not "01:30" on every tick
    hours = pd.Series(pd.to_datetime([1_764_812_400, 1_764_830_400], unit="s"))
    assert time_format(hours) == "%H:%M"
    days = pd.Series(pd.to_datetime([1_764_812_400, 1_765_071_600], unit="s"))
    assert time_format(days) == "%b %d %H:%M"
