"""The Costs tab: what every request cost here and would have cost on a cloud API.

Reads the ledger only (never a model): plots per request over time, totals
per model and family, the saving against the cloud, and exports of the
whole ledger as CSV or JSON written into ASSISTANT_HOME/exports.
"""

from __future__ import annotations

import csv
import json
import time

import gradio as gr
import pandas as pd

from assistant.accounting.ledger import COLUMNS
from assistant.flow.service import Assistant
from assistant.web.ui.documents import user_of
from assistant.web.ui.render import usd


def user_filter(assistant: Assistant, request) -> str | None:
    """Behind a login (or in public mode) each user sees their own requests; else the whole
    ledger, which is the one person's at this machine."""
    if not (assistant.settings.auth or assistant.settings.public):
        return None
    return user_of(request)


def finished_frame(assistant: Assistant, user: str | None = None) -> pd.DataFrame:
    """One row per finished request that was routed to a model, with its family.

    Requests rejected before routing (empty, unknown model) cost nothing and
    name no real model, so they stay in the ledger and out of the plots.
    """
    rows = [r for r in assistant.ledger.rows(user=user) if r["status"] != "started" and r["task"]]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    families = {e.id: e.family for e in assistant.catalog.entries.values()}
    frame["family"] = frame["model"].map(families).fillna("?").astype(str)
    frame["model"] = frame["model"].astype(str)
    # Typed even when empty: the browser fixes each plot's axis kinds from the
    # first data it gets, and an empty frame's object columns made a y axis
    # of text labels (a "point scale") that later rows never repaired.
    # Epoch milliseconds: the browser draws them in its own local time.
    frame["when"] = pd.to_datetime(pd.to_numeric(frame["started_at"]), unit="s")
    for col in ("usd_local", "usd_cloud", "run_s", "load_s", "device_seconds"):
        frame[col] = pd.to_numeric(frame[col]).fillna(0.0).astype(float)
    return frame.sort_values("when")


def totals(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(
            columns=[by, "requests", "device_s", "usd_local", "usd_cloud", "saving_usd"]
        )
    grouped = (
        frame.groupby(by)
        .agg(
            requests=("request_id", "count"),
            device_s=("device_seconds", "sum"),
            usd_local=("usd_local", "sum"),
            usd_cloud=("usd_cloud", "sum"),
        )
        .reset_index()
    )
    grouped["saving_usd"] = grouped["usd_cloud"] - grouped["usd_local"]
    return grouped.round(6)


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """A totals table as a person reads it: money as money ("$0.0066", never 0.006644),
    seconds to a tenth, headers in words."""
    shown = table.copy()
    shown["device_s"] = [f"{s:,.1f}" for s in shown["device_s"]]
    for col in ("usd_local", "usd_cloud", "saving_usd"):
        shown[col] = [usd(v) for v in shown[col]]
    return shown.rename(columns=READABLE)


READABLE = {
    "device_s": "device seconds",
    "usd_local": "$ here",
    "usd_cloud": "$ on a cloud API",
    "saving_usd": "saved (cloud − here)",
}


def export(assistant: Assistant, kind: str, user: str | None = None) -> str:
    """Write the ledger (one user's rows, when given) to ASSISTANT_HOME/exports; its path."""
    folder = assistant.settings.home / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ledger-{time.strftime('%Y%m%d-%H%M%S')}.{kind}"
    rows = assistant.ledger.rows(user=user)
    if kind == "csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    return str(path)


def build_costs_tab(assistant: Assistant, tab: gr.Tab) -> None:
    """Adds the tab's components to the Blocks being built; refreshes when it opens."""
    refresh_btn, outputs, csv_btn, json_btn = _layout()
    on = CostHandlers(assistant)
    refresh_btn.click(on.refresh, None, outputs, api_name="costs")
    tab.select(on.refresh, None, outputs)
    csv_btn.click(on.export_csv, None, csv_btn)
    json_btn.click(on.export_json, None, json_btn)


def saving_frame(by_model: pd.DataFrame) -> pd.DataFrame:
    """Per model, its total $ here and $ on a cloud API as two rows ("where": here | cloud)."""
    saving = by_model.melt(
        id_vars="model",
        value_vars=["usd_local", "usd_cloud"],
        var_name="where",
        value_name="usd",
    )
    saving["usd"] = saving["usd"].astype(float)  # a number even with no rows
    saving["where"] = saving["where"].map({"usd_local": "here", "usd_cloud": "cloud"})
    return saving


class CostHandlers:
    """The tab's events (Gradio names their endpoints after these methods)."""

    def __init__(self, assistant: Assistant):
        self.assistant = assistant

    def refresh(self, request: gr.Request = None):
        frame = finished_frame(self.assistant, user_filter(self.assistant, request))
        by_model = totals(frame, "model")
        saving = saving_frame(by_model)
        # The browser builds a plot's chart once, from its first data, and
        # afterwards only swaps the rows: the axis kinds and the colours it
        # knows stay those of the first data (none, on a fresh home). Naming
        # the legend's entries rebuilds the chart, so every refresh draws
        # with today's models; no data at all shows "no data", not an empty chart.
        models = sorted(frame["model"].unique())

        def plot(kind, data: pd.DataFrame, legend: list[str], y: str | None = None):
            if data.empty:
                return kind(value=None, colors_in_legend=legend)
            if y is None:
                return kind(value=data, colors_in_legend=legend)
            # Headroom above the highest point: with the axis ending at it, the
            # top point (the only one, on a fresh home) was drawn half clipped.
            top = float(data[y].max()) or 1.0
            return kind(
                value=data,
                colors_in_legend=legend,
                y_lim=[0, top * 1.15],
                x_axis_format=time_format(data["when"]),
            )

        return (
            plot(gr.ScatterPlot, frame, models, "usd_local"),
            plot(gr.ScatterPlot, frame, models, "run_s"),
            readable(by_model),
            plot(gr.BarPlot, saving, models),
            readable(totals(frame, "family")),
        )

    def export_csv(self, request: gr.Request = None) -> str:
        return export(self.assistant, "csv", user_filter(self.assistant, request))

    def export_json(self, request: gr.Request = None) -> str:
        return export(self.assistant, "json", user_filter(self.assistant, request))


def _layout() -> tuple:
    """(refresh button, the five outputs a refresh fills, CSV button, JSON button)."""
    gr.Markdown(
        "Every request's cost from the ledger: **here** is device-seconds × the "
        "device's rental price, **cloud** is the same work priced on a hosted API "
        "(`assistant/accounting/prices.json`, each price with its source and date). Energy on a "
        "CPU is an estimate and says so."
    )
    refresh_btn = gr.Button("Refresh", size="sm", elem_id="costs-refresh")
    with gr.Row():
        # "%H:%M": Vega's default clock is 12-hour, so 16:21 read as 04:21.
        cost_plot = _over_time("usd_local", "$ here per request", "$ here", "costs-usd")
        latency_plot = _over_time("run_s", "Run seconds per request", "run seconds", "costs-run")
    with gr.Row():
        # Two bars, here and cloud, each stacked by model: their heights are the totals.
        saving_plot = gr.BarPlot(
            x="where",
            y="usd",
            color="model",
            sort=["here", "cloud"],
            title="Total $ here vs on a cloud API, by model",
            height=260,
            elem_id="costs-saving",
        )
    by_model = gr.Dataframe(label="Totals per model", interactive=False, elem_id="costs-models")
    by_family = gr.Dataframe(label="Totals per family", interactive=False)
    with gr.Row():
        csv_btn = gr.DownloadButton("Export CSV", size="sm")
        json_btn = gr.DownloadButton("Export JSON", size="sm")
    outputs = [cost_plot, latency_plot, by_model, saving_plot, by_family]
    return refresh_btn, outputs, csv_btn, json_btn


def time_format(when: pd.Series) -> str:
    """The time axis's labels, as fine as the span needs: requests of one session fell in
    one minute and every tick read "01:30"; a span of days needs the date."""
    span = when.max() - when.min()
    if span < pd.Timedelta(minutes=10):
        return "%H:%M:%S"
    if span < pd.Timedelta(days=1):
        return "%H:%M"
    return "%b %d %H:%M"


def _over_time(y: str, title: str, y_title: str, elem_id: str) -> gr.ScatterPlot:
    return gr.ScatterPlot(
        x="when",
        y=y,
        color="model",
        title=title,
        height=260,
        x_title="time",
        x_axis_format="%H:%M",
        y_title=y_title,
        y_lim=[0, None],
        elem_id=elem_id,
    )
