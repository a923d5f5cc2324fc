"""`reclab report --compare OLD NEW`: the regression gate between two result sets.

Each variant is judged by its ratio to its own set's baseline (repeat by repeat; the baseline's runs
under both labels, when the set has an A/A copy), old against new, so that drift of the machine
between the two sets — which moves every variant, the baseline included — cancels. Each comparison
(a variant on one metric) has one of three outcomes (`Outcome`):

- `regression`: the ratio got worse by more than the threshold and the change is significant
  (one-sided Welch test on the log ratios, Holm across every comparison that has a p-value);
- `ok`: the change's 95% interval does not reach past the threshold on the worse side: the data show
  the variant did not get worse by more than the threshold;
- `undecided`: neither, with the repeats per set that would decide it (`repeats_needed`); also a
  variant with fewer than 3 good repeats in either set.

The metrics: when both sets counted server instructions per request, they are the primary measure
(their run-to-run spread is a fraction of a percent) and server CPU per request and capacity are
secondary: a secondary comparison can still be a `regression`, and is `undecided` when its whole 95%
interval lies past the threshold without Holm confirming it (a change the instructions do not show);
a secondary interval that is merely wide leaves the variant to its instructions. Without instructions
in both sets, CPU per request and capacity are both primary. A variant's outcome is the worst of its
comparisons; a variant of OLD missing or failed in NEW is a `regression`. Two sets that are not like
for like (spec, stream, dataset, load, engines) are refused.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scipy import stats

from reclab.analysis.stats import ALPHA, CONFIDENCE, Interval, holm, t_quantile
from reclab.analysis.summary import Metric, Metrics, VariantSummary, machine_speeds, role_key, summarise
from reclab.errors import ResultsError
from reclab.results.record import BenchInfo, RunRecord

DEFAULT_THRESHOLD = 0.05
MIN_REPEATS = 3
MAX_REPEATS = 100  # how far `repeats_needed` looks; beyond it, "more than 100"


class NotComparable(ResultsError):
    """Two result sets that differ in more than the code under test."""


class Outcome(StrEnum):
    """What the gate says of one comparison, and of a variant (the worst of its comparisons)."""

    OK = "ok"  # shown not to have got worse by more than the threshold
    UNDECIDED = "undecided"  # not shown either way at these repeats
    REGRESSION = "regression"  # worse by more than the threshold, significant; or missing or failed in NEW


SEVERITY = {Outcome.OK: 0, Outcome.UNDECIDED: 1, Outcome.REGRESSION: 2}


@dataclass
class Change:
    """One variant on one metric, OLD against NEW, and what the gate made of it."""

    key: str
    metric: Metric
    old: Interval | None  # the variant's ratio to its baseline in OLD
    new: Interval | None
    change: Interval | None  # new ratio / old ratio
    p_worse: float | None  # one-sided: did it get worse?
    worse_by: float | None  # how much worse (a fraction; negative: better)
    primary: bool = True  # the variant's primary measure (instructions, where both sets counted them)
    repeats: tuple[int, int] = (0, 0)  # good repeats in OLD and NEW
    spreads: tuple[float, float] | None = None  # standard deviation of a log ratio in OLD and NEW
    outcome: Outcome = Outcome.UNDECIDED
    needs: int | None = None  # undecided: the repeats per set that would decide it (MAX_REPEATS + 1: more)
    why: str = ""

    @property
    def worse_ends(self) -> tuple[float, float] | None:
        """The change's 95% interval as fractions worse: (its better end, its worse end)."""
        c = self.change
        if c is None or c.low is None or c.high is None:
            return None
        return (1 / c.high - 1, 1 / c.low - 1) if self.metric.higher_is_better else (c.low - 1, c.high - 1)


def workload_of(bench: BenchInfo) -> dict[str, Any]:
    """What makes two benches serve the same work: spec, request stream, dataset, load."""
    return {"spec": bench.spec.name, "stream": bench.stream_hash, "dataset": bench.dataset_hash, "load": bench.load}


SETUP = ("engines", "generator", "shards", "partition")  # besides the workload, what a comparison must share


def like_for_like(old: BenchInfo, new: BenchInfo) -> list[str]:
    """What differs between two result sets besides the code: spec, stream, dataset, load, engines, and
    where the load came from."""
    before, after = ({**workload_of(b), **{name: getattr(b, name) for name in SETUP}} for b in (old, new))
    return [f"{name} ({before[name]} vs {after[name]})" for name in before if before[name] != after[name]]


def _logs(variant: VariantSummary, baseline: VariantSummary, metric: Metric) -> list[float]:
    v, b = variant.by_repeat(metric), baseline.by_repeat(metric)
    return [math.log(v[r] / b[r]) for r in sorted(set(v) & set(b)) if v[r] > 0 and b[r] > 0]


def _change(key: str, metric: Metric, old: VariantSummary, new: VariantSummary, old_base: VariantSummary,
            new_base: VariantSummary, primary: bool) -> Change:  # fmt: skip
    """The variant's change on one metric, with its interval and one-sided p-value (not yet judged)."""
    old_logs, new_logs = _logs(old, old_base, metric), _logs(new, new_base, metric)
    old_ratio = Interval(math.exp(statistics.fmean(old_logs))) if old_logs else None
    new_ratio = Interval(math.exp(statistics.fmean(new_logs))) if new_logs else None
    repeats = (len(old_logs), len(new_logs))
    if min(repeats) < MIN_REPEATS:
        return Change(key, metric, old_ratio, new_ratio, None, None, None, primary, repeats)
    diff = statistics.fmean(new_logs) - statistics.fmean(old_logs)
    sign = -1.0 if metric.higher_is_better else 1.0  # worse: more CPU, less capacity
    if len(set(new_logs)) == len(set(old_logs)) == 1:  # no spread: the difference is all there is
        p_worse, low, high = (0.0 if sign * diff > 0 else 1.0), diff, diff
    else:
        worse = "less" if metric.higher_is_better else "greater"
        p_worse = float(stats.ttest_ind(new_logs, old_logs, equal_var=False, alternative=worse).pvalue)
        low, high = map(float, stats.ttest_ind(new_logs, old_logs, equal_var=False).confidence_interval(CONFIDENCE))
    change = Interval(math.exp(diff), math.exp(low), math.exp(high))
    spreads = (statistics.stdev(old_logs), statistics.stdev(new_logs))
    return Change(key, metric, old_ratio, new_ratio, change, p_worse, math.expm1(sign * diff), primary, repeats, spreads)


def _decided(worse: float, variances: tuple[float, float], n: int, threshold: float) -> bool:
    """Whether a change `worse` (log scale, positive: worse) with these log-ratio variances in OLD and
    NEW would be decided with n repeats in each set: significant at ALPHA when past the threshold,
    else its 95% interval within it (Welch, degrees of freedom from the spreads)."""
    total = sum(variances)
    if total == 0:
        return True
    se = math.sqrt(total / n)
    df = (n - 1) * total**2 / sum(v * v for v in variances)
    if worse > math.log1p(threshold):
        return float(stats.t.sf(worse / se, df)) < ALPHA
    return worse + t_quantile(df) * se <= math.log1p(threshold)


def repeats_needed(change: Change, threshold: float) -> int:
    """The smallest number of repeats per set, above the fewer that either set has, at which this
    comparison would be decided with the same mean change and the same spreads: a regression (the
    one-sided test significant at ALPHA, the change past the threshold) or ok (the 95% interval no
    longer reaching past it). MAX_REPEATS + 1 when not even MAX_REPEATS would; MIN_REPEATS when the
    comparison could not be judged at all. Holm is ignored here: the estimate is a lower bound, and
    where only Holm kept the comparison from being a regression it is the next count of repeats."""
    if change.spreads is None or change.worse_by is None:
        return MIN_REPEATS
    variances = (change.spreads[0] ** 2, change.spreads[1] ** 2)
    worse = math.log1p(change.worse_by)
    start = max(min(change.repeats) + 1, MIN_REPEATS)
    return next((n for n in range(start, MAX_REPEATS + 1) if _decided(worse, variances, n, threshold)), MAX_REPEATS + 1)


def needs_text(needs: int) -> str:
    """`needs 7 repeats`, or `needs more than 100 repeats`."""
    return f"needs more than {MAX_REPEATS} repeats" if needs > MAX_REPEATS else f"needs {needs} repeats"


def _undecided(change: Change, why: str, threshold: float) -> None:
    change.outcome, change.why, change.needs = Outcome.UNDECIDED, why, repeats_needed(change, threshold)


def _worse_text(fraction: float) -> str:
    """A change as a fraction worse, in words: `8.0% worse`, `3.1% better`."""
    return f"{abs(fraction):.1%} {'worse' if fraction > 0 else 'better'}"


def judge(change: Change, p: float | None, threshold: float) -> None:
    """The comparison's outcome, given its Holm-adjusted p-value (None: it was not tested)."""
    ends = change.worse_ends
    if p is None or ends is None or change.worse_by is None:
        counts = f"{change.repeats[0]} good repeats in OLD, {change.repeats[1]} in NEW"
        if change.primary:
            _undecided(change, f"cannot judge: {counts}", threshold)
        else:
            change.outcome, change.why = Outcome.OK, f"not judged ({counts}): the instructions decide"
        return
    better, worse = ends
    if change.worse_by > threshold and p < ALPHA:
        change.outcome, change.why = Outcome.REGRESSION, f"{change.worse_by:+.1%} worse (Holm p = {p:.3f})"
    elif worse <= threshold:
        change.outcome = Outcome.OK
    elif change.primary:
        why = f"{_worse_text(change.worse_by)}, but its 95% interval reaches {worse:.1%} worse (Holm p = {p:.3f})"
        _undecided(change, why, threshold)
    elif better > threshold:
        why = (f"{change.worse_by:+.1%} worse, its whole 95% interval past the threshold, but Holm p = {p:.3f} does not "
               "confirm it: a change the instructions do not show (cache misses, system calls, waiting?)")  # fmt: skip
        _undecided(change, why, threshold)
    else:
        why = "its 95% interval reaches past the threshold, no evidence of a change: the instructions decide"
        change.outcome, change.why = Outcome.OK, why


def _measured(metric: Metric, records: list[RunRecord]) -> bool:
    return any(r.ok and metric.of(r) is not None for r in records)


def gate_metrics(old_records: list[RunRecord], new_records: list[RunRecord]) -> list[tuple[Metric, bool]]:
    """The metrics the gate judges, each with whether it is primary: server instructions per request
    when both sets counted them, then server CPU per request and capacity as secondary (those that both
    sets measured); else CPU per request and capacity, both primary."""
    load = old_records[0].bench.load
    known, other = Metrics.of(load, old_records), Metrics.of(load, new_records)
    timed = [known.cost, *([known.capacity] if known.capacity else [])]
    if known.instructions is None or other.instructions is None:
        return [(metric, True) for metric in timed]
    secondary = [m for m in timed if _measured(m, old_records) and _measured(m, new_records)]
    return [(known.instructions, True), *((metric, False) for metric in secondary)]


def compare(old_records: list[RunRecord], new_records: list[RunRecord], threshold: float = DEFAULT_THRESHOLD) -> list[Change]:
    """Every variant of OLD judged in NEW. Raises NotComparable for sets that are not like for like."""
    differences = like_for_like(old_records[0].bench, new_records[0].bench)
    if differences:
        raise NotComparable("not like for like, refusing to compare: " + "; ".join(differences))
    old, new = summarise(old_records), summarise(new_records)
    old_key, new_key = role_key(old, "baseline"), role_key(new, "baseline")
    if old_key is None or new_key is None or not new[new_key].runs:
        raise NotComparable("both result sets need a baseline with good runs (role baseline)")
    metrics = gate_metrics(old_records, new_records)
    changes, measured = [], []
    for key, summary in old.items():
        if summary.role != "variant" or not summary.runs:
            continue
        for metric, primary in metrics:
            if key not in new or not new[key].runs:
                why = "missing in NEW" if key not in new else "every run failed in NEW"
                changes.append(Change(key, metric, None, None, None, None, None, primary, outcome=Outcome.REGRESSION, why=why))
                continue
            measured.append(_change(key, metric, summary, new[key], reference(old), reference(new), primary))
            changes.append(measured[-1])
    adjusted = holm([c.p_worse for c in measured])  # one family: every comparison with a p-value
    for change, p in zip(measured, adjusted, strict=True):
        judge(change, p, threshold)
    return changes


def outcomes(changes: list[Change]) -> dict[str, Outcome]:
    """Each variant's outcome: the worst of its comparisons (regression, then undecided, then ok)."""
    out: dict[str, Outcome] = {}
    for c in changes:
        if SEVERITY[c.outcome] >= SEVERITY[out.get(c.key, Outcome.OK)]:
            out[c.key] = c.outcome
    return out


def regressed_and_undecided(changes: list[Change]) -> tuple[list[str], list[str]]:
    """The variants whose outcome is a regression, and those undecided, each sorted."""
    verdicts = outcomes(changes)
    regressed = sorted(key for key, outcome in verdicts.items() if outcome is Outcome.REGRESSION)
    return regressed, sorted(key for key, outcome in verdicts.items() if outcome is Outcome.UNDECIDED)


def needs(changes: list[Change], key: str) -> int:
    """The repeats per set that would decide every undecided comparison of a variant."""
    return max((c.needs for c in changes if c.key == key and c.needs is not None), default=MIN_REPEATS)


def reference(summaries: dict[str, VariantSummary]) -> VariantSummary:
    """The baseline's runs, with its A/A copy's when there is one."""
    baseline = next(s for s in summaries.values() if s.role == "baseline")
    aa = next((s for s in summaries.values() if s.role == "aa"), None)
    return baseline.joined(aa) if aa is not None else baseline


def baseline_note(old_records: list[RunRecord], new_records: list[RunRecord]) -> str | None:
    """How the baseline itself and the machine's speed index moved: drift, not a verdict."""
    old, new = summarise(old_records), summarise(new_records)
    old_key, new_key = role_key(old, "baseline"), role_key(new, "baseline")
    if old_key is None or new_key is None:
        return None
    metrics = Metrics.of(old_records[0].bench.load, old_records)
    metric = metrics.cost
    a, b = old[old_key].median(metric), new[new_key].median(metric)
    speeds = [machine_speeds(records) for records in (old_records, new_records)]
    notes = [f"baseline {metric.name}: old {a:.3f} ms, new {b:.3f} ms"] if a and b else []
    if metrics.instructions is not None:
        i, j = old[old_key].median(metrics.instructions), new[new_key].median(metrics.instructions)
        notes += [f"baseline {metrics.instructions.name}: old {i:,.0f}, new {j:,.0f} ({j / i - 1:+.1%})"] if i and j else []
    if all(speeds):
        s0, s1 = (statistics.median(s) for s in speeds)
        notes.append(f"machine speed index: old {s0:.1f}, new {s1:.1f} ({s1 / s0 - 1:+.1%})")
    if not notes:
        return None
    return "; ".join(notes) + ". The machine's drift moves every variant alike; the gate judges ratios to the baseline."
