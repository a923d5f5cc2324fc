"""Per-variant summaries of a result set, and the metrics read from each run's phases."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from reclab.analysis.stats import Interval, geometric_interval
from reclab.results.config import RunConfig
from reclab.results.record import PhaseResult, RunRecord


@dataclass(frozen=True)
class Metric:
    """One number read from one phase of a run (None when the run has no such phase or number)."""

    name: str  # what the reader sees
    phase: str  # open | closed
    read: Callable[[PhaseResult], float | None]
    higher_is_better: bool = False
    unit: str = ""

    def of(self, record: RunRecord) -> float | None:
        phase = record.phase(self.phase)
        return None if phase is None else self.read(phase)


def _latency(percentile: str, phase: str) -> Metric:
    def read(p: PhaseResult) -> float | None:
        lat = p.latency_us
        if lat is None:
            return None
        value = {"p50": lat.p50, "p90": lat.p90, "p99": lat.p99, "p99.9": lat.p99_9, "max": lat.max}[percentile]
        return value / 1000

    return Metric(f"{percentile} latency ({phase} loop)", phase, read, unit="ms")


def server_cpu(phase: str) -> Metric:
    return Metric(f"server CPU per request ({phase} loop)", phase, lambda p: p.server_cpu_ms_per_request, unit="ms")


CAPACITY = Metric("capacity (closed loop)", "closed", lambda p: p.throughput_rps, higher_is_better=True, unit="req/s")
OPEN_P50 = _latency("p50", "open")
OPEN_P99 = _latency("p99", "open")
DB_TIME = Metric("database time per request (open loop)", "open", lambda p: p.server_timing_ms.db, unit="ms")
PERCENTILES = ("p50", "p90", "p99", "p99.9")


def latency(percentile: str, phase: str) -> Metric:
    return _latency(percentile, phase)


@dataclass
class VariantSummary:
    key: str
    config: RunConfig
    role: str = "variant"
    runs: list[RunRecord] = field(default_factory=list)  # ok runs only
    failed: list[RunRecord] = field(default_factory=list)

    def by_repeat(self, metric: Metric) -> dict[int, float]:
        return {r.repeat: float(v) for r in self.runs if (v := metric.of(r)) is not None}

    def values(self, metric: Metric) -> list[float]:
        return list(self.by_repeat(metric).values())

    def median(self, metric: Metric) -> float | None:
        values = self.values(metric)
        return statistics.median(values) if values else None

    def interval(self, metric: Metric) -> Interval | None:
        """Geometric mean over repeats with its 95% interval."""
        return geometric_interval(self.values(metric))

    def cv(self, metric: Metric) -> float | None:
        values = self.values(metric)
        if len(values) < 2 or statistics.fmean(values) == 0:
            return None
        return statistics.stdev(values) / statistics.fmean(values)

    def phases(self, name: str) -> list[PhaseResult]:
        return [p for r in self.runs if (p := r.phase(name)) is not None]

    def phase_median(self, name: str, read: Callable[[PhaseResult], float | None]) -> float | None:
        values = [v for p in self.phases(name) if (v := read(p)) is not None]
        return statistics.median(values) if values else None

    def errors(self, name: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for p in self.phases(name):
            total.update(p.errors)
        return dict(total)

    def bottlenecks(self, name: str) -> Counter[str]:
        """What limited the phase, counted over repeats."""
        return Counter(p.bottleneck for p in self.phases(name))

    def merged_histogram(self, name: str) -> HdrHistogram | None:
        merged = None
        for p in self.phases(name):
            histogram = HdrHistogram.decode(p.hdr)
            if merged is None:
                merged = histogram
            else:
                merged.add(histogram)
        return merged

    def latency_curve(self, name: str) -> list[tuple[float, float]]:
        """(percentile, latency ms) points of all repeats merged, for an HDR-style plot."""
        histogram = self.merged_histogram(name)
        if histogram is None or histogram.get_total_count() == 0:
            return []
        points = sorted({*(100 - 100 * 10 ** (-k / 20) for k in range(0, 81)), 0.0})  # 0% .. 99.99%, log-spaced
        values = histogram.get_percentile_to_value_dict(points)
        return [(p, values[p] / 1000.0) for p in points]


def summarise(records: list[RunRecord]) -> dict[str, VariantSummary]:
    """Variant summaries: the baseline first, its A/A copy second, then the rest as they first ran."""
    ordered: dict[str, VariantSummary] = {}
    for record in sorted((r for r in records if r.kind == "run"), key=lambda r: (r.repeat, r.sequence)):
        summary = ordered.setdefault(record.key, VariantSummary(record.key, record.config, record.role))
        (summary.runs if record.ok else summary.failed).append(record)
    rank = {"baseline": 0, "aa": 1}
    return dict(sorted(ordered.items(), key=lambda item: rank.get(item[1].role, 2)))


def machine_speeds(records: list[RunRecord]) -> list[float]:
    """The machine speed index of every record that has one (taken before each run)."""
    return [r.machine_speed for r in records if r.machine_speed]


def role_key(summaries: dict[str, VariantSummary], role: str) -> str | None:
    return next((key for key, s in summaries.items() if s.role == role), None)
