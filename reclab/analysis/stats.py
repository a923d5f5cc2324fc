"""Intervals and ratios over repeats (scipy's t distribution).

Repeats are interleaved, so repeat r of a variant and of the baseline ran close together: ratios
are paired by repeat, computed on the log scale (t interval on the mean log ratio, n - 1 degrees of
freedom), and exponentiated back. With one repeat there is no interval. Two independent sets of
runs (--compare) are compared with Welch's interval on the log scale.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95


def t_quantile(df: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided quantile of Student's t for `df` degrees of freedom."""
    return float(stats.t.ppf(0.5 + confidence / 2, df))


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

    def exp(self) -> Interval:
        """The interval of exp(x) for an interval of x (log scale back to ratios)."""
        if not self.has_interval:
            return Interval(math.exp(self.value))
        return Interval(math.exp(self.value), math.exp(self.low), math.exp(self.high))  # type: ignore[arg-type]


def mean_interval(values: list[float]) -> Interval:
    """Mean with its 95% t interval."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Interval(mean)
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half)


def paired_ratio(variant: dict[int, float], baseline: dict[int, float]) -> Interval | None:
    """Ratio variant / baseline, paired by repeat: the geometric mean of the per-repeat ratios with
    the 95% t interval of the mean log ratio, exponentiated back."""
    repeats = sorted(set(variant) & set(baseline))
    logs = [math.log(variant[r] / baseline[r]) for r in repeats if variant[r] > 0 and baseline[r] > 0]
    if not logs:
        return None
    return mean_interval(logs).exp()


def welch_ratio(new: list[float], old: list[float]) -> Interval | None:
    """new / old as a ratio of geometric means with a 95% Welch interval (None without data)."""
    new_logs = [math.log(v) for v in new if v > 0]
    old_logs = [math.log(v) for v in old if v > 0]
    if not new_logs or not old_logs:
        return None
    center = statistics.fmean(new_logs) - statistics.fmean(old_logs)
    if len(new_logs) < 2 or len(old_logs) < 2:
        return Interval(math.exp(center))
    va, vb = statistics.variance(new_logs) / len(new_logs), statistics.variance(old_logs) / len(old_logs)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(math.exp(center), math.exp(center), math.exp(center))
    df = (va + vb) ** 2 / (va**2 / (len(new_logs) - 1) + vb**2 / (len(old_logs) - 1))
    half = t_quantile(df) * se
    return Interval(center, center - half, center + half).exp()


def verdict(ratio: Interval | None, higher_is_better: bool = True) -> str:
    if ratio is None:
        return "no data"
    if not ratio.has_interval:
        return "one repeat: no interval"
    if not ratio.excludes_one():
        return "no significant difference"
    better = ratio.value > 1.0 if higher_is_better else ratio.value < 1.0
    return "faster" if better else "slower"
