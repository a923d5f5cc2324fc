"""Intervals, paired tests over repeats, and multiple-comparison control (scipy's t distribution).

Every variant runs once per repeat, so repeat r of a variant and of its reference ran in the same
round: ratios are paired by repeat, computed on the log scale (t interval on the mean log ratio, n - 1
degrees of freedom), and exponentiated back. With one repeat there is no interval.
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


def geometric_interval(values: list[float]) -> Interval | None:
    """Geometric mean of positive values with its 95% interval (t on the logs): never below zero."""
    logs = [math.log(v) for v in values if v > 0]
    return mean_interval(logs).exp() if logs else None


ALPHA = 0.05
POWER = 0.80


@dataclass(frozen=True)
class PairedTest:
    """A variant against its reference on one metric, paired by repeat, on the log scale."""

    n: int
    ratio: Interval | None  # geometric mean of the per-repeat ratios, 95% interval
    p_diff: float | None  # two-sided: is the ratio 1?
    p_equiv: float | None  # two one-sided tests: is the ratio within 1 ± margin?
    sd: float | None  # standard deviation of the per-repeat log ratios

    def inverted(self) -> PairedTest:
        """The same test with the two sides swapped: the ratio and its interval inverted."""
        ratio = self.ratio
        if ratio is not None:
            ratio = Interval(
                1 / ratio.value, None if ratio.high is None else 1 / ratio.high, None if ratio.low is None else 1 / ratio.low
            )
        return PairedTest(self.n, ratio, self.p_diff, self.p_equiv, self.sd)


def paired_test(variant: dict[int, float], reference: dict[int, float], margin: float) -> PairedTest:
    """Paired t test (difference) and TOST (equivalence within ±margin) on the mean log ratio."""
    repeats = sorted(set(variant) & set(reference))
    logs = [math.log(variant[r] / reference[r]) for r in repeats if variant[r] > 0 and reference[r] > 0]
    n = len(logs)
    if n == 0:
        return PairedTest(0, None, None, None, None)
    mean = statistics.fmean(logs)
    if n < 2:
        return PairedTest(n, Interval(math.exp(mean)), None, None, None)
    sd = statistics.stdev(logs)
    se = sd / math.sqrt(n)
    ratio = mean_interval(logs).exp()
    if se == 0:
        differs = mean != 0
        inside = abs(mean) < math.log1p(margin)
        return PairedTest(n, ratio, 0.0 if differs else 1.0, 0.0 if inside else 1.0, 0.0)
    df = n - 1
    p_diff = float(2 * stats.t.sf(abs(mean) / se, df))
    bound = math.log1p(margin)
    p_equiv = float(max(stats.t.sf((mean + bound) / se, df), stats.t.cdf((mean - bound) / se, df)))
    return PairedTest(n, ratio, p_diff, p_equiv, sd)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None: not tested, left out)."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(tested)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def detectable_change(sd: float | None, n: int, family: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The smallest ratio change (as a fraction) a paired test of n repeats with this spread would
    detect with the given power, at the family-wise level (Bonferroni: a bound for Holm)."""
    if sd is None or n < 2:
        return None
    df = n - 1
    t_alpha = stats.t.ppf(1 - alpha / (2 * max(1, family)), df)
    t_power = stats.t.ppf(power, df)
    return float(math.expm1((t_alpha + t_power) * sd / math.sqrt(n)))


def decide(test: PairedTest, p_diff: float | None, p_equiv: float | None, margin: float, higher_is_better: bool) -> str:
    """faster | slower | equivalent within ±X% | inconclusive, from (adjusted) p-values."""
    if test.ratio is None or p_diff is None:
        return "inconclusive (fewer than 2 repeats)" if test.n < 2 else "inconclusive"
    if p_diff < ALPHA:
        better = test.ratio.value > 1 if higher_is_better else test.ratio.value < 1
        return "faster" if better else "slower"
    if p_equiv is not None and p_equiv < ALPHA:
        return f"equivalent within ±{margin:.0%}"
    return "inconclusive"
