"""`reclab report --compare OLD NEW`: per-variant changes between two result sets.

A variant has regressed when its throughput fell by more than the threshold and the drop is
significant (95% Welch interval of the log ratio, over repeats, below 1), or when its p99 grew by
more than the threshold with significance.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from reclab.analysis.stats import Interval, welch_ratio
from reclab.analysis.summary import LATENCY, THROUGHPUT, machine_speeds, summarise
from reclab.results.record import RunRecord

DEFAULT_THRESHOLD = 0.05


@dataclass
class Change:
    key: str
    throughput: Interval | None
    p99: Interval | None
    regressed: bool
    why: str


def compare(old_records: list[RunRecord], new_records: list[RunRecord], threshold: float = DEFAULT_THRESHOLD) -> list[Change]:
    old, new = summarise(old_records), summarise(new_records)
    changes = []
    for key in [k for k in new if k in old]:
        a, b = old[key], new[key]
        tp = welch_ratio(b.values(THROUGHPUT), a.values(THROUGHPUT))
        p99 = welch_ratio(b.values(LATENCY["p99"]), a.values(LATENCY["p99"]))
        reasons = []
        if tp and tp.has_interval and tp.value < 1 - threshold and tp.high is not None and tp.high < 1:
            reasons.append(f"throughput {tp.value - 1:+.1%}")
        if p99 and p99.has_interval and p99.value > 1 + threshold and p99.low is not None and p99.low > 1:
            reasons.append(f"p99 {p99.value - 1:+.1%}")
        if not b.runs and a.runs:
            reasons.append("every run failed")
        changes.append(Change(key, tp, p99, bool(reasons), ", ".join(reasons)))
    return changes


def comparability_notes(old_records: list[RunRecord], new_records: list[RunRecord]) -> list[str]:
    """What differs between the two result sets besides the code: stream, dataset, load, engines."""
    old, new = (next((r.bench for r in records if r.kind == "run"), None) for records in (old_records, new_records))
    if old is None or new is None:
        return []
    notes = []
    for name in ("stream_hash", "dataset_hash", "load", "engines", "machine"):
        if getattr(old, name) != getattr(new, name):
            notes.append(f"not like for like: {name} differs ({getattr(old, name)} vs {getattr(new, name)})")
    return notes


def speed_note(old_records: list[RunRecord], new_records: list[RunRecord]) -> str | None:
    """How the machine's own speed index moved between the two result sets, if both recorded it."""
    medians = []
    for records in (old_records, new_records):
        speeds = machine_speeds(records)
        if not speeds:
            return None
        medians.append(statistics.median(speeds))
    change = medians[1] / medians[0] - 1
    return (f"machine speed index: old {medians[0]:.1f}, new {medians[1]:.1f} ({change:+.1%}); a change here moves "
            "every variant alike and is the machine's, not the code's")  # fmt: skip
