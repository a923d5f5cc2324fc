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
    sd: float | None  # standard deviation of a per-repeat log ratio
    df: float = 0.0  # degrees of freedom of that standard deviation

    def inverted(self) -> PairedTest:
        """The same test with the two sides swapped: the ratio and its interval inverted."""
        ratio = self.ratio
        if ratio is not None:
            ratio = Interval(
                1 / ratio.value, None if ratio.high is None else 1 / ratio.high, None if ratio.low is None else 1 / ratio.low
            )
        return PairedTest(self.n, ratio, self.p_diff, self.p_equiv, self.sd, self.df)


@dataclass(frozen=True)
class Pool:
    """The run-to-run spread of a metric, pooled over every variant of a result set."""

    sd: float  # residual standard deviation of one run's log value
    df: int


def pooled_spread(series: list[dict[int, float]]) -> Pool | None:
    """Residual spread of log values under an additive variant + repeat model: every repeat runs every
    variant once in a random order, a randomized block design; the residual, pooled over all variants,
    estimates one run's noise with far more degrees of freedom than one pair of variants can."""
    logs = [{r: math.log(v) for r, v in s.items() if v > 0} for s in series]
    logs = [s for s in logs if len(s) >= 2]
    repeats = sorted({r for s in logs for r in s})
    if len(logs) < 2 or len(repeats) < 2:
        return None
    rows = [statistics.fmean(s.values()) for s in logs]
    cols = dict.fromkeys(repeats, 0.0)
    for _ in range(25):  # alternating means: exact for complete data, close enough where a run failed
        cols = {r: statistics.fmean(s[r] - rows[i] for i, s in enumerate(logs) if r in s) for r in repeats}
        rows = [statistics.fmean(s[r] - cols[r] for r in s) for s in logs]
    residuals = [s[r] - rows[i] - cols[r] for i, s in enumerate(logs) for r in s]
    df = len(residuals) - len(logs) - len(repeats) + 1
    if df < 1:
        return None
    return Pool(math.sqrt(sum(e * e for e in residuals) / df), df)


def paired_test(
    variant: dict[int, float], reference: dict[int, float], margin: float, pool: Pool | None = None, reference_runs: int = 1
) -> PairedTest:
    """t test (difference) and TOST (equivalence within ±margin) on the mean log ratio over the repeats
    both ran; the spread is the pooled one when given (`reference_runs`: how many runs each reference
    value averages), else that of these pairs."""
    repeats = sorted(set(variant) & set(reference))
    logs = [math.log(variant[r] / reference[r]) for r in repeats if variant[r] > 0 and reference[r] > 0]
    n = len(logs)
    if n == 0:
        return PairedTest(0, None, None, None, None)
    mean = statistics.fmean(logs)
    if pool is not None:
        sd, df = pool.sd * math.sqrt(1 + 1 / reference_runs), float(pool.df)
    elif n >= 2:
        sd, df = statistics.stdev(logs), float(n - 1)
    else:
        return PairedTest(n, Interval(math.exp(mean)), None, None, None)
    se = sd / math.sqrt(n)
    if se == 0:
        differs = mean != 0
        inside = abs(mean) < math.log1p(margin)
        return PairedTest(n, Interval(mean, mean, mean).exp(), 0.0 if differs else 1.0, 0.0 if inside else 1.0, 0.0, df)
    half = t_quantile(df) * se
    ratio = Interval(mean, mean - half, mean + half).exp()
    p_diff = float(2 * stats.t.sf(abs(mean) / se, df))
    bound = math.log1p(margin)
    p_equiv = float(max(stats.t.sf((mean + bound) / se, df), stats.t.cdf((mean - bound) / se, df)))
    return PairedTest(n, ratio, p_diff, p_equiv, sd, df)


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


def detectable_change(test: PairedTest, family: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """The smallest ratio change (as a fraction) this test's repeats and spread would detect with the
    given power, at the family-wise level (Bonferroni: a bound for Holm)."""
    sd, n, df = test.sd, test.n, test.df
    if sd is None or n < 2 or df < 1:
        return None
    t_alpha = stats.t.ppf(1 - alpha / (2 * max(1, family)), df)
    t_power = stats.t.ppf(power, df)
    return float(math.expm1((t_alpha + t_power) * sd / math.sqrt(n)))
