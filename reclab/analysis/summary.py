"""Per-variant summaries of a result set, and the metrics read from each run's phases."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

from reclab.analysis.flags import saturation
from reclab.analysis.stats import Interval, geometric_interval
from reclab.results.config import RunConfig
from reclab.results.record import PhaseResult, RunRecord
from workloads.spec import LoadModel

INSTRUCTIONS = "instructions"  # where the instruction metric is read: the run's instruction window, not a phase


@dataclass(frozen=True)
class Metric:
    """One number read from one phase of a run, or from its instruction window (None when the run has
    no such phase, window or number)."""

    name: str  # what the reader sees
    phase: str  # a phase's name, or INSTRUCTIONS
    read: Callable[[PhaseResult], float | None]
    higher_is_better: bool = False
    unit: str = ""

    def of(self, record: RunRecord) -> float | None:
        if self.phase == INSTRUCTIONS:
            return record.instructions.per_request if record.instructions is not None else None
        phase = record.phase(self.phase)
        return None if phase is None else self.read(phase)

    @property
    def counted(self) -> bool:
        """Counted by valgrind (instructions), not timed."""
        return self.phase == INSTRUCTIONS


def _no_phase(_: PhaseResult) -> float | None:
    return None


INSTRUCTIONS_PER_REQUEST = Metric("server instructions per request", INSTRUCTIONS, _no_phase, unit="instr")


def _latency(percentile: str, phase: str) -> Metric:
    def read(p: PhaseResult) -> float | None:
        lat = p.latency_us
        if lat is None:
            return None
        value = {"p50": lat.p50, "p90": lat.p90, "p99": lat.p99, "p99.9": lat.p99_9, "max": lat.max}[percentile]
        return value / 1000

    return Metric(f"{percentile} latency ({phase})", phase, read, unit="ms")


def server_cpu(phase: str, pace_us: float | None = None) -> Metric:
    """Server CPU per request; with `pace_us`, each run's figure is taken at that pace: multiplied by
    pace_us / the pace the server's reference work kept over the same window (see servers.core.pace),
    which takes out how fast the host happened to run the core at the time."""
    if pace_us is None:
        return Metric(f"server CPU per request ({phase})", phase, lambda p: p.server_cpu_ms_per_request, unit="ms")

    def paced(p: PhaseResult) -> float | None:
        if p.server_cpu_ms_per_request is None:
            return None
        return p.server_cpu_ms_per_request * pace_us / p.pace_us if p.pace_us else p.server_cpu_ms_per_request

    return Metric(f"server CPU per request ({phase}, at one pace)", phase, paced, unit="ms")


def capacity(phase: str) -> Metric:
    return Metric(f"capacity ({phase})", phase, lambda p: p.throughput_rps, higher_is_better=True, unit="req/s")


def db_time(phase: str) -> Metric:
    return Metric(f"database time per request ({phase})", phase, lambda p: p.server_timing_ms.db, unit="ms")


@dataclass(frozen=True)
class Metrics:
    """The metrics of a result set, read from the phases its load had.

    - latency: the open phase with the lowest rate (latency below saturation);
    - cost: server CPU per request, from the open phase with the highest rate when there are two or
      more (the same work at the same rate for every variant), else from the closed phase, else the
      only open phase; taken at the median pace of that phase over the result set (see `server_cpu`);
    - capacity: the closed phase."""

    cost: Metric
    capacity: Metric | None
    p50: Metric | None
    p99: Metric | None
    db_time: Metric | None
    latency_rate: float | None  # the latency phase's arrival rate
    instructions: Metric | None = None  # server instructions per request, where the runs counted them

    @classmethod
    def of(cls, load: LoadModel, records: list[RunRecord]) -> Metrics:
        opens = sorted((p for p in load.phases if p.mode == "open"), key=lambda p: p.rate)
        closed = next((p for p in load.phases if p.mode == "closed"), None)
        cost = opens[-1] if len(opens) > 1 else (closed or opens[0])
        latency = opens[0] if opens else None
        paces = [p.pace_us for r in records if r.kind == "run" and (p := r.phase(cost.name)) is not None and p.pace_us]
        return cls(
            cost=server_cpu(cost.name, statistics.median(paces) if paces else None),
            capacity=capacity(closed.name) if closed else None,
            p50=_latency("p50", latency.name) if latency else None,
            p99=_latency("p99", latency.name) if latency else None,
            db_time=db_time(latency.name) if latency else None,
            latency_rate=latency.rate if latency else None,
            instructions=INSTRUCTIONS_PER_REQUEST if any(r.instructions is not None for r in records) else None,
        )


@dataclass
class VariantSummary:
    key: str
    config: RunConfig
    role: str = "variant"
    runs: list[RunRecord] = field(default_factory=list)  # ok runs only
    failed: list[RunRecord] = field(default_factory=list)

    def by_repeat(self, metric: Metric) -> dict[int, float]:
        """The metric per repeat (the geometric mean where a repeat ran this configuration twice)."""
        logs: dict[int, list[float]] = {}
        for r in self.runs:
            value = metric.of(r)
            if value is not None and value > 0:
                logs.setdefault(r.repeat, []).append(math.log(value))
        return {repeat: math.exp(statistics.fmean(v)) for repeat, v in logs.items()}

    @property
    def runs_per_repeat(self) -> int:
        repeats = {r.repeat for r in self.runs}
        return max(1, round(len(self.runs) / len(repeats))) if repeats else 1

    def joined(self, other: VariantSummary) -> VariantSummary:
        """The runs of both under this summary's name: the baseline and its A/A copy as one reference."""
        return VariantSummary(self.key, self.config, self.role, [*self.runs, *other.runs], [*self.failed, *other.failed])

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

    def saturated(self, phase: str, capacity: Metric | None) -> list[list[str]]:
        """For each run whose open phase `phase` was not below saturation, why (`flags.saturation`;
        against the run's own capacity, read with `capacity`)."""
        out = []
        for run in self.runs:
            measured = run.phase(phase)
            if measured is not None and measured.mode == "open":
                reasons = saturation(measured, capacity.of(run) if capacity else None)
                if reasons:
                    out.append(reasons)
        return out

    def errors(self) -> dict[str, int]:
        """Errors by kind, every phase of every run."""
        total: Counter[str] = Counter()
        for r in self.runs:
            for p in r.phases:
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
