"""What a request cost: device-seconds, energy, dollars here, dollars on a cloud API.

- device-seconds: load + run time on the device that did the work (a cold
  load is charged to the request that paid it; requests decoded together in
  one batch each pay run time ÷ batch size).
- energy: NVML's energy counter on an NVIDIA GPU when it can be read;
  otherwise device-seconds × the device's assumed watts, labelled
  "estimate" so nobody mistakes it for a measurement.
- $ local: device-seconds × the device's $/hour from the price table (what
  renting that device costs; configurable).
- $ cloud: the same work priced on a hosted API from the dated table.

A remote endpoint (models/remote.py) uses no local device: no device-seconds
or energy are charged here, and $ local is the endpoint's own price from its
catalog entry (zero for a self-hosted server with no price set).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from models.base import BadInput, Usage

PRICES_FILE = Path(__file__).with_name("prices.json")
DEVICE_FIELDS = ("usd_per_hour", "watts", "source", "date")


@dataclass(frozen=True)
class Cost:
    device: str  # "cpu" | "cuda" | "mps" | "remote:<host:port>" (an endpoint did the work)
    device_seconds: float  # load + run on that device
    energy_j: float  # joules
    energy_method: str  # "nvml" (measured) | "estimate: <watts> W × device-seconds"
    usd_local: float  # device-seconds × $/hour of the device
    usd_cloud: float | None  # the same work on a hosted API; None when not comparable
    cloud_ref: str | None  # which API price, and its date

    def as_dict(self) -> dict:
        return asdict(self)


class Prices:
    def __init__(self, table: dict, origin: str):
        self.devices = table["devices"]
        self.cloud = table["cloud"]
        self.origin = origin

    @classmethod
    def load(cls, path: Path | None = None) -> Prices:
        """The price table; a malformed one is refused with a message naming the fix."""
        path = Path(path or os.environ.get("ASSISTANT_PRICES") or PRICES_FILE)
        try:
            table = json.loads(path.read_text())
            for device, row in table["devices"].items():
                missing = [f for f in DEVICE_FIELDS if f not in row]
                if missing:
                    raise ValueError(f"device '{device}' lacks {', '.join(missing)}")
                if float(row["usd_per_hour"]) < 0 or float(row["watts"]) < 0:
                    raise ValueError(f"device '{device}' has a negative price or power")
            for task, row in table["cloud"].items():
                if "source" not in row or "date" not in row:
                    raise ValueError(f"cloud row '{task}' lacks its source or date")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise BadInput(
                f"The price table {path} is not usable ({err}). Fix it, or unset "
                "ASSISTANT_PRICES to use the built-in table."
            ) from err
        return cls(table, str(path))

    def cloud_usd(self, task: str, usage: Usage) -> tuple[float | None, str | None]:
        row = self.cloud.get(task)
        if row is None:
            return None, None
        usd = usd_for(row, usage)
        if usd is None:
            return None, None
        return usd, f"{row.get('model', task)} ({row['source']}, {row['date']})"


def usd_for(row: dict, usage: Usage) -> float | None:
    """``usage`` priced by one price row (a hosted API's, or an endpoint's own from the
    catalog), in whichever unit the row prices; None when it prices another unit."""
    if usage.unit == "tokens" and "usd_per_1m_input_tokens" in row:
        return (
            usage.units_in * float(row["usd_per_1m_input_tokens"])
            + usage.units_out * float(row.get("usd_per_1m_output_tokens", 0))
        ) / 1e6
    if usage.unit == "audio_seconds" and "usd_per_minute" in row:
        return usage.units_in / 60 * float(row["usd_per_minute"])
    if usage.unit == "images" and "usd_per_image" in row:
        # Pictures made (generation, edits) or read (vision), whichever the work was.
        return max(usage.units_in, usage.units_out) * float(row["usd_per_image"])
    if usage.unit == "searches" and "usd_per_1k_searches" in row:
        return usage.units_in * float(row["usd_per_1k_searches"]) / 1000
    if usage.unit == "characters" and "usd_per_1m_characters" in row:
        return usage.units_in * float(row["usd_per_1m_characters"]) / 1e6
    if usage.unit in ("tokens", "characters") and "usd_per_1m_tokens" in row:
        tokens = usage.units_in if usage.unit == "tokens" else usage.units_in / 4
        return tokens * float(row["usd_per_1m_tokens"]) / 1e6
    return None


def cost_of(
    task: str,
    device: str,
    device_seconds: float,
    usage: Usage | None,
    prices: Prices,
    measured_energy_j: float | None = None,
    endpoint_prices: dict | None = None,
    compare_cloud: bool = True,
) -> Cost:
    if device.startswith("remote"):  # "remote:<host:port>", where the work ran
        return _remote_cost(task, device, usage, prices, endpoint_prices)
    row = prices.devices.get(device) or prices.devices["cpu"]
    if measured_energy_j is not None:
        energy, method = measured_energy_j, "nvml"
    else:
        energy = device_seconds * float(row["watts"])
        method = f"estimate: {row['watts']:g} W × device-seconds"
    usd_local = device_seconds / 3600 * float(row["usd_per_hour"])
    comparable = usage is not None and compare_cloud
    usd_cloud, ref = prices.cloud_usd(task, usage) if comparable else (None, None)
    return Cost(
        device, round(device_seconds, 4), round(energy, 3), method, usd_local, usd_cloud, ref
    )


def _remote_cost(
    task: str, device: str, usage: Usage | None, prices: Prices, own: dict | None
) -> Cost:
    """A remote endpoint used no local device: what it charges is its catalog price,
    per its own unit (tokens, audio minutes, images); zero when it sets none."""
    usd = (usd_for(own, usage) if own and usage else None) or 0.0
    usd_cloud, ref = prices.cloud_usd(task, usage) if usage else (None, None)
    return Cost(
        device, 0.0, 0.0, "not measured: the work ran on a remote endpoint", usd, usd_cloud, ref
    )


class EnergyMeter:
    """Reads NVIDIA's cumulative energy counter around a step, when there is one.

    ``pynvml`` is optional (nvidia-ml-py); without it, or on a CPU, read()
    returns None and the cost falls back to the labelled estimate.
    """

    def __init__(self, device: str):
        self.handle = None
        self.start_mj = None
        if not device.startswith("cuda"):
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.start_mj = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except Exception:  # no driver, no counter (pre-Volta), no package
            self.handle = None

    def read_joules(self) -> float | None:
        if self.handle is None:
            return None
        import pynvml

        return (pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.start_mj) / 1000
