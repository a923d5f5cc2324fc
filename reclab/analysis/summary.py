"""Per-variant summaries of a result set, and the metrics read from each run's measurement."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from reclab.analysis.stats import Interval, mean_interval
from reclab.results.config import RunConfig
from reclab.results.record import Measurement, RunRecord


@dataclass(frozen=True)
class Metric:
    """One number read from a run's measurement (None when the run has none)."""

    name: str
    read: Callable[[Measurement], float | None]
    higher_is_better: bool = False


def _latency(percentile: str) -> Metric:
    def read(m: Measurement) -> float | None:
        if m.latency_us is None:
            return None
        return {"p50": m.latency_us.p50, "p90": m.latency_us.p90, "p99": m.latency_us.p99,
                "p99.9": m.latency_us.p99_9, "max": m.latency_us.max}[percentile]  # fmt: skip

    return Metric(percentile, read)


THROUGHPUT = Metric("throughput_rps", lambda m: m.throughput_rps, higher_is_better=True)
SERVER_CPU = Metric("server_cpu_ms_per_request", lambda m: m.server_cpu_ms_per_request)
DB_OPS = Metric("db_ops_per_request", lambda m: m.db_ops_per_request)
ROUND_TRIPS = Metric("db_round_trips_per_request", lambda m: m.db_round_trips_per_request)
CACHE_HITS = Metric("cache_hit_ratio", lambda m: m.cache_hit_ratio, higher_is_better=True)
DB_TIME = Metric("server_timing_ms.db", lambda m: m.server_timing_ms.db)
PERCENTILES = ("p50", "p90", "p99", "p99.9", "max")
LATENCY = {p: _latency(p) for p in PERCENTILES}
STAGES = ("db", "cache", "app")


@dataclass
class VariantSummary:
    key: str
    config: RunConfig
    runs: list[RunRecord] = field(default_factory=list)  # ok runs only
    failed: list[RunRecord] = field(default_factory=list)

    def _measured(self) -> list[tuple[int, Measurement]]:
        return [(r.repeat, r.measured) for r in self.runs if r.measured is not None]

    def by_repeat(self, metric: Metric) -> dict[int, float]:
        return {repeat: float(v) for repeat, m in self._measured() if (v := metric.read(m)) is not None}

    def values(self, metric: Metric) -> list[float]:
        return list(self.by_repeat(metric).values())

    def median(self, metric: Metric) -> float | None:
        values = self.values(metric)
        return statistics.median(values) if values else None

    def stage_ms(self, stage: str) -> float:
        """Median Server-Timing of one stage (db, cache, app) per request."""
        values = [getattr(m.server_timing_ms, stage) for _, m in self._measured()]
        return statistics.median(values) if values else 0.0

    def added_delay_ms(self, service: str = "mongo") -> float | None:
        values = [r.added_delay_ms[service] for r in self.runs if service in r.added_delay_ms]
        return statistics.median(values) if values else None

    def throughput(self) -> Interval | None:
        values = self.values(THROUGHPUT)
        return mean_interval(values) if values else None

    def cv(self) -> float | None:
        values = self.values(THROUGHPUT)
        if len(values) < 2 or statistics.fmean(values) == 0:
            return None
        return statistics.stdev(values) / statistics.fmean(values)

    def errors(self) -> int:
        return sum(m.error_count for _, m in self._measured())

    def merged_histogram(self) -> HdrHistogram | None:
        merged = None
        for _, m in self._measured():
            histogram = HdrHistogram.decode(m.hdr)
            if merged is None:
                merged = histogram
            else:
                merged.add(histogram)
        return merged

    def latency_curve(self) -> list[tuple[float, float]]:
        """(percentile, latency ms) points of all repeats merged, for an HDR-style plot."""
        histogram = self.merged_histogram()
        if histogram is None or histogram.get_total_count() == 0:
            return []
        points = [p / 10 for p in range(0, 1000)] + [99.9, 99.95, 99.99]
        return [(p, histogram.get_value_at_percentile(p) / 1000.0) for p in points]


def summarise(records: list[RunRecord]) -> dict[str, VariantSummary]:
    """Variant summaries in the order the matrix ran them (the first is the baseline)."""
    ordered: dict[str, VariantSummary] = {}
    for record in sorted((r for r in records if r.kind == "run"), key=lambda r: (r.order, r.repeat)):
        summary = ordered.setdefault(record.key, VariantSummary(record.key, record.config))
        (summary.runs if record.ok else summary.failed).append(record)
    return ordered


def machine_speeds(records: list[RunRecord]) -> list[float]:
    """The machine speed index of every record that has one (taken before each run)."""
    return [r.machine_speed for r in records if r.machine_speed]


def baseline_key(summaries: dict[str, VariantSummary]) -> str | None:
    """The first variant of the matrix (order 0) is its baseline."""
    return next(iter(summaries), None)
