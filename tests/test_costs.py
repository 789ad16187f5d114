"""The cost model: arithmetic per unit, the price table's checks, and the ledger's cost columns."""

from __future__ import annotations

import json

import pytest

from assistant.accounting.costs import PRICES_FILE, Prices, cost_of
from assistant.accounting.ledger import MIGRATIONS, VERSION_TABLE, Finished, Ledger, Started
from assistant.database import SQLiteDatabase
from models.base import BadInput, Usage


@pytest.fixture
def prices() -> Prices:
    return Prices.load(PRICES_FILE)


def test_every_shipped_row_has_a_source_and_a_date(prices):
    for row in list(prices.devices.values()) + list(prices.cloud.values()):
        assert row["source"] and row["date"][:2] == "20"


def test_text_cost_uses_the_dated_token_prices(prices):
    row = prices.cloud["text"]
    cost = cost_of("text", "cpu", 36.0, Usage(1_000_000, 500_000, "tokens"), prices)
    expected_cloud = row["usd_per_1m_input_tokens"] + row["usd_per_1m_output_tokens"] / 2
    assert cost.usd_cloud == pytest.approx(expected_cloud)
    assert cost.usd_local == pytest.approx(36 / 3600 * prices.devices["cpu"]["usd_per_hour"])
    assert cost.device_seconds == 36.0
    assert row["date"] in cost.cloud_ref


def test_speech_is_priced_per_minute_of_audio(prices):
    cost = cost_of("asr", "cpu", 2.0, Usage(90.0, 200, "audio_seconds"), prices)
    assert cost.usd_cloud == pytest.approx(1.5 * prices.cloud["asr"]["usd_per_minute"])


def test_pictures_are_priced_per_picture_read_or_made(prices):
    read = cost_of("vision", "cpu", 1.0, Usage(2, 0, "images"), prices)
    assert read.usd_cloud == pytest.approx(2 * prices.cloud["vision"]["usd_per_image"])
    made = cost_of("image_generation", "cpu", 9.0, Usage(0, 3, "images"), prices)
    assert made.usd_cloud == pytest.approx(3 * prices.cloud["image_generation"]["usd_per_image"])


def test_energy_without_a_meter_is_an_estimate_and_says_so(prices):
    cost = cost_of("text", "cpu", 3.0, Usage(1, 1), prices)
    watts = prices.devices["cpu"]["watts"]
    assert cost.energy_j == pytest.approx(3.0 * watts)
    assert cost.energy_method.startswith("estimate")


def test_measured_energy_is_labelled_measured(prices):
    cost = cost_of("text", "cuda", 3.0, Usage(1, 1), prices, measured_energy_j=123.4)
    assert cost.energy_j == 123.4 and cost.energy_method == "nvml"
    assert cost.usd_local == pytest.approx(3 / 3600 * prices.devices["cuda"]["usd_per_hour"])


def test_a_task_without_a_cloud_row_has_no_cloud_price(prices):
    cost = cost_of("unknown-task", "cpu", 1.0, Usage(1, 1), prices)
    assert cost.usd_cloud is None and cost.cloud_ref is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: "not json at all {",
        lambda t: json.dumps({"cloud": t["cloud"]}),  # no devices
        lambda t: json.dumps({**t, "devices": {"cpu": {"usd_per_hour": 1}}}),  # no watts/source
        lambda t: json.dumps({**t, "devices": {"cpu": {**t["devices"]["cpu"], "watts": -5}}}),
        lambda t: json.dumps({**t, "cloud": {"text": {"usd_per_1m_input_tokens": 1}}}),
    ],
)
def test_a_malformed_price_table_is_refused_with_the_fix(tmp_path, mangle):
    table = json.loads(PRICES_FILE.read_text())
    path = tmp_path / "prices.json"
    path.write_text(mangle(table))
    with pytest.raises(BadInput, match="ASSISTANT_PRICES"):
        Prices.load(path)


def test_a_v1_ledger_migrates_to_cost_columns_keeping_its_rows(tmp_path):
    path = tmp_path / "ledger.sqlite"
    old = SQLiteDatabase(path)
    old.migrate(MIGRATIONS[:1], VERSION_TABLE)  # a ledger as version 1 left it
    old.execute(
        "INSERT INTO events (request_id, phase, ts, task, model) "
        "VALUES ('old', 'started', 1.0, 'text', 'm')"
    )
    old.close()

    ledger = Ledger(path)
    versions = [r[0] for r in ledger.db.all("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert ledger.get("old")["status"] == "error"  # left open by an earlier run: closed
    prices = Prices.load(PRICES_FILE)
    cost = cost_of("text", "cpu", 2.0, Usage(10, 5), prices)
    ledger.start(Started("new", "s", "cli", "text", "m", "why", 0.9))
    ledger.finish(Finished("new", "ok", units_in=10, units_out=5, cost=cost))
    row = ledger.get("new")
    assert row["usd_local"] == pytest.approx(cost.usd_local)
    assert row["energy_method"].startswith("estimate") and row["device_seconds"] == 2.0
