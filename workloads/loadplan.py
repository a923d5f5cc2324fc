"""The handshake between the lab's load driver and the locustfile: what a locust process is told
(settings), how it records latency (HDR bounds, percentiles), and what it writes back (its part).

The driver writes the settings as JSON and names the file and the process index in two environment
variables; each locust process writes its part as JSON next to the settings when it quits.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

CONFIG_ENV = "RECLAB_LOAD_CONFIG"
INDEX_ENV = "RECLAB_LOAD_INDEX"
HDR_MIN_US, HDR_MAX_US, HDR_DIGITS = 1, 60_000_000, 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds, 1 µs to 60 s, 3 significant digits."""
    return HdrHistogram(HDR_MIN_US, HDR_MAX_US, HDR_DIGITS)


def record_us(histogram: HdrHistogram, latency_us: float) -> None:
    """Record one latency, clamped into the histogram's range (a 2-minute stall counts as 60 s)."""
    histogram.record_value(max(HDR_MIN_US, min(HDR_MAX_US, round(latency_us))))


def percentiles_us(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9, max and mean in µs; empty when nothing was recorded."""
    if histogram.get_total_count() == 0:
        return {}
    out = {name: float(histogram.get_value_at_percentile(p)) for name, p in PERCENTILES.items()}
    out["max"] = float(histogram.get_max_value())
    out["mean"] = round(histogram.get_mean_value(), 1)
    return out


@dataclass(frozen=True)
class LoadSettings:
    """What every locust process of one run is told."""

    paths_file: str  # the request stream, one path per line
    processes: int
    mode: str  # closed | open
    rate: float  # open loop: arrivals per second, all processes together
    arrival: str  # poisson | constant
    seed: int
    schedule_start: float  # time.monotonic() of the first arrival (open loop)
    measure_start: float
    measure_end: float
    out: str  # prefix of the part files

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def from_environment(cls) -> tuple[LoadSettings, int]:
        """The settings and this process's index, as the driver passed them."""
        settings = cls(**json.loads(Path(os.environ[CONFIG_ENV]).read_text()))
        return settings, int(os.environ[INDEX_ENV])

    def environment(self, path: Path, index: int) -> dict[str, str]:
        return {CONFIG_ENV: str(path), INDEX_ENV: str(index)}

    def part_path(self, index: int) -> Path:
        return Path(f"{self.out}.{index}.json")


@dataclass
class LoadPart:
    """What one locust process recorded in the measurement window."""

    index: int
    ok: int = 0
    sent: int = 0
    late_starts: int = 0
    unfinished: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    hdr: str = ""

    def write(self, path: Path) -> None:
        partial = path.with_name(path.name + ".part")
        partial.write_text(json.dumps(asdict(self)))
        os.replace(partial, path)

    @classmethod
    def read(cls, path: Path) -> LoadPart:
        data: dict[str, Any] = json.loads(path.read_text())
        return cls(**data)
