"""Statistics over results.jsonl: per-variant summaries and ratios to a baseline with 95% confidence
intervals over repeats.

Repeats are interleaved (A B C A B C ...), so repeat r of a variant and of the baseline ran close
together: ratios are paired by repeat, computed on the log scale (t interval on the mean log ratio,
n - 1 degrees of freedom), and exponentiated back. With one repeat there is no interval.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom.
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
       2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip
HIGH_VARIANCE_CV = 0.10  # coefficient of variation of throughput over repeats above which a variant is flagged
PERCENTILES = ("p50", "p90", "p99", "p99.9", "max")


def t95(df: int) -> float:
    """Two-sided 95% quantile of Student's t; beyond the table, the Cornish-Fisher expansion."""
    if 1 <= df <= len(T95):
        return T95[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Interval:
    value: float
    low: float | None = None
    high: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def excludes_one(self) -> bool:
        return self.has_interval and (self.low > 1.0 or self.high < 1.0)  # type: ignore[operator]

    def text(self, digits: int = 2) -> str:
        if not self.has_interval:
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def mean_interval(values: list[float]) -> Interval:
    """Mean with its 95% t interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean)
    half = t95(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half)


def paired_ratio(variant: dict[int, float], baseline: dict[int, float]) -> Interval | None:
    """Ratio variant / baseline, paired by repeat: the geometric mean of the per-repeat ratios with
    the 95% t interval of the mean log ratio, exponentiated back."""
    repeats = sorted(set(variant) & set(baseline))
    logs = [math.log(variant[r] / baseline[r]) for r in repeats if variant[r] > 0 and baseline[r] > 0]
    if not logs:
        return None
    log_interval = mean_interval(logs)
    if not log_interval.has_interval:
        return Interval(math.exp(log_interval.value))
    return Interval(math.exp(log_interval.value), math.exp(log_interval.low), math.exp(log_interval.high))  # type: ignore[arg-type]


def verdict(ratio: Interval | None, higher_is_better: bool = True) -> str:
    if ratio is None:
        return "no data"
    if not ratio.has_interval:
        return "one repeat: no interval"
    if not ratio.excludes_one():
        return "no significant difference"
    better = ratio.value > 1.0 if higher_is_better else ratio.value < 1.0
    return "faster" if better else "slower"


@dataclass
class VariantSummary:
    key: str
    config: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)  # ok runs only
    failed: list[dict[str, Any]] = field(default_factory=list)

    def by_repeat(self, metric: str) -> dict[int, float]:
        return {r["repeat"]: float(_get(r, metric)) for r in self.runs if _get(r, metric) is not None}

    def median(self, metric: str) -> float | None:
        values = [float(v) for r in self.runs if (v := _get(r, metric)) is not None]
        return statistics.median(values) if values else None

    def throughput(self) -> Interval | None:
        values = [r["throughput_rps"] for r in self.runs]
        return mean_interval(values) if values else None

    def cv(self) -> float | None:
        values = [r["throughput_rps"] for r in self.runs]
        if len(values) < 2 or statistics.fmean(values) == 0:
            return None
        return statistics.stdev(values) / statistics.fmean(values)

    def errors(self) -> int:
        return sum(r.get("error_count", 0) for r in self.runs)

    def merged_histogram(self) -> HdrHistogram | None:
        merged = None
        for run in self.runs:
            histogram = HdrHistogram.decode(run["hdr"])
            if merged is None:
                merged = histogram
            else:
                merged.add(histogram)
        return merged


def _get(record: dict[str, Any], metric: str) -> Any:
    value: Any = record
    for part in metric.split(".", 1):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def summarise(records: list[dict[str, Any]]) -> dict[str, VariantSummary]:
    """Variant summaries in the order the matrix ran them."""
    ordered: dict[str, VariantSummary] = {}
    for record in sorted((r for r in records if r.get("kind") == "run"), key=lambda r: (r.get("order", 0), r.get("repeat", 0))):
        summary = ordered.setdefault(record["key"], VariantSummary(record["key"], record["config"]))
        (summary.runs if record["status"] == "ok" else summary.failed).append(record)
    return ordered


def machine_speeds(records: list[dict[str, Any]]) -> list[float]:
    """The machine speed index of every record that has one (taken before each run)."""
    return [r["machine_speed"] for r in records if r.get("machine_speed")]


def baseline_key(summaries: dict[str, VariantSummary]) -> str | None:
    """The first variant of the matrix (order 0) is its baseline."""
    return next(iter(summaries), None)


def differing_factors(config: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    return [name for name in baseline if config.get(name) != baseline.get(name)]


def flagged(records: list[dict[str, Any]], summaries: dict[str, VariantSummary]) -> list[tuple[str, str]]:
    """(what, why) for every flagged run and every high-variance variant."""
    out = []
    for record in records:
        flags = record.get("flags") or []
        if record.get("kind") != "run" and record.get("status") == "ok":
            continue  # the ceiling run saturates its generator by design; the warm-up run is unscored
        if flags:
            where = record.get("key") or record.get("kind")
            why = ", ".join(flags) + (f": {record['error']}" if record.get("error") else "")
            if record.get("errors"):
                why += f" ({', '.join(f'{k} x{v}' for k, v in record['errors'].items())})"
            out.append((f"{where} (repeat {record.get('repeat', 0) + 1})", why))
    for key, summary in summaries.items():
        cv = summary.cv()
        if cv is not None and cv > HIGH_VARIANCE_CV:
            out.append((key, f"high variance: throughput varies {cv:.0%} (coefficient of variation) over repeats"))
    return out
