"""`reclab report --compare OLD NEW`: the regression gate between two result sets.

Each variant is judged by its ratio to its own set's baseline (repeat by repeat; the baseline's runs
under both labels, when the set has an A/A copy), old against new, so
that drift of the machine between the two sets — which moves every variant, the baseline included —
cancels. A variant regressed when that ratio got worse by more than the threshold and the change is
significant (one-sided Welch test on the log ratios, Holm across every variant and metric). The gate
also fails when a variant of OLD is missing or failed in NEW, or has fewer than 3 good repeats to
judge. Two sets that are not like for like (spec, stream, dataset, load, engines) are refused.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from scipy import stats

from reclab.analysis.stats import ALPHA, CONFIDENCE, Interval, holm
from reclab.analysis.summary import Metric, Metrics, VariantSummary, machine_speeds, role_key, summarise
from reclab.errors import ResultsError
from reclab.results.record import BenchInfo, RunRecord

DEFAULT_THRESHOLD = 0.05
MIN_REPEATS = 3


class NotComparable(ResultsError):
    """Two result sets that differ in more than the code under test."""


@dataclass
class Change:
    key: str
    metric: Metric
    old: Interval | None  # the variant's ratio to its baseline in OLD
    new: Interval | None
    change: Interval | None  # new ratio / old ratio
    p_worse: float | None  # one-sided: did it get worse?
    worse_by: float | None  # how much worse (a fraction; negative: better)
    regressed: bool = False
    why: str = ""


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
            new_base: VariantSummary) -> Change:  # fmt: skip
    old_logs, new_logs = _logs(old, old_base, metric), _logs(new, new_base, metric)
    old_ratio = Interval(math.exp(statistics.fmean(old_logs))) if old_logs else None
    new_ratio = Interval(math.exp(statistics.fmean(new_logs))) if new_logs else None
    if min(len(old_logs), len(new_logs)) < MIN_REPEATS:
        why = f"cannot judge: {len(old_logs)} good repeats in OLD, {len(new_logs)} in NEW (needs {MIN_REPEATS})"
        return Change(key, metric, old_ratio, new_ratio, None, None, None, regressed=True, why=why)
    diff = statistics.fmean(new_logs) - statistics.fmean(old_logs)
    sign = -1.0 if metric.higher_is_better else 1.0  # worse: more CPU, less capacity
    if len(set(new_logs)) == len(set(old_logs)) == 1:  # no spread: the difference is all there is
        p_worse, low, high = (0.0 if sign * diff > 0 else 1.0), diff, diff
    else:
        worse = "less" if metric.higher_is_better else "greater"
        p_worse = float(stats.ttest_ind(new_logs, old_logs, equal_var=False, alternative=worse).pvalue)
        low, high = map(float, stats.ttest_ind(new_logs, old_logs, equal_var=False).confidence_interval(CONFIDENCE))
    change = Interval(math.exp(diff), math.exp(low), math.exp(high))
    return Change(key, metric, old_ratio, new_ratio, change, p_worse, math.expm1(sign * diff))


def compare(old_records: list[RunRecord], new_records: list[RunRecord], threshold: float = DEFAULT_THRESHOLD) -> list[Change]:
    """Every variant of OLD judged in NEW. Raises NotComparable for sets that are not like for like."""
    differences = like_for_like(old_records[0].bench, new_records[0].bench)
    if differences:
        raise NotComparable("not like for like, refusing to compare: " + "; ".join(differences))
    old, new = summarise(old_records), summarise(new_records)
    old_key, new_key = role_key(old, "baseline"), role_key(new, "baseline")
    if old_key is None or new_key is None or not new[new_key].runs:
        raise NotComparable("both result sets need a baseline with good runs (role baseline)")
    known = Metrics.of(old_records[0].bench.load, old_records)
    metrics = [known.cost, *([known.capacity] if known.capacity else [])]
    changes = []
    for key, summary in old.items():
        if summary.role != "variant" or not summary.runs:
            continue
        for metric in metrics:
            if key not in new or not new[key].runs:
                why = "missing in NEW" if key not in new else "every run failed in NEW"
                changes.append(Change(key, metric, None, None, None, None, None, regressed=True, why=why))
                continue
            changes.append(_change(key, metric, summary, new[key], reference(old), reference(new)))
    tested = [c for c in changes if c.p_worse is not None]
    for change, p in zip(tested, holm([c.p_worse for c in tested]), strict=True):
        if change.worse_by is not None and change.worse_by > threshold and p is not None and p < ALPHA:
            change.regressed, change.why = True, f"{change.worse_by:+.1%} worse (Holm p = {p:.3f})"
    return changes


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
    metric = Metrics.of(old_records[0].bench.load, old_records).cost
    a, b = old[old_key].median(metric), new[new_key].median(metric)
    speeds = [machine_speeds(records) for records in (old_records, new_records)]
    note = f"baseline {metric.name}: old {a:.3f} ms, new {b:.3f} ms" if a and b else ""
    if all(speeds):
        s0, s1 = (statistics.median(s) for s in speeds)
        note += f"; machine speed index: old {s0:.1f}, new {s1:.1f} ({s1 / s0 - 1:+.1%})"
    return (note + ". The machine's drift moves every variant alike; the gate judges ratios to the baseline.") if note else None
