"""`reclab report --compare OLD NEW`: per-variant changes between two result sets.

A variant has regressed when its throughput fell by more than the threshold and the drop is
significant (95% Welch interval of the log ratio, over repeats, below 1), or when its p99 grew by
more than the threshold with significance. The command then exits non-zero.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from reclab.analysis import Interval, machine_speeds, summarise, t95

DEFAULT_THRESHOLD = 0.05


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
    half = t95(max(1, math.floor(df))) * se
    return Interval(math.exp(center), math.exp(center - half), math.exp(center + half))


@dataclass
class Change:
    key: str
    throughput: Interval | None
    p99: Interval | None
    regressed: bool
    why: str


Records = list[dict[str, Any]]


def compare(old_records: Records, new_records: Records, threshold: float = DEFAULT_THRESHOLD) -> list[Change]:
    old, new = summarise(old_records), summarise(new_records)
    changes = []
    for key in [k for k in new if k in old]:
        a, b = old[key], new[key]
        tp = welch_ratio([r["throughput_rps"] for r in b.runs], [r["throughput_rps"] for r in a.runs])
        p99 = welch_ratio([r["latency_us"]["p99"] for r in b.runs], [r["latency_us"]["p99"] for r in a.runs])
        reasons = []
        if tp and tp.has_interval and tp.value < 1 - threshold and tp.high is not None and tp.high < 1:
            reasons.append(f"throughput {tp.value - 1:+.1%}")
        if p99 and p99.has_interval and p99.value > 1 + threshold and p99.low is not None and p99.low > 1:
            reasons.append(f"p99 {p99.value - 1:+.1%}")
        if not b.runs and a.runs:
            reasons.append("every run failed")
        changes.append(Change(key, tp, p99, bool(reasons), ", ".join(reasons)))
    return changes


def compare_table(changes: list[Change], threshold: float) -> str:
    lines = [
        f"| variant | throughput new/old [95% CI] | p99 new/old [95% CI] | verdict (threshold {threshold:.0%}) |",
        "|---|---|---|---|",
    ]
    for c in changes:
        verdict = f"REGRESSED: {c.why}" if c.regressed else "ok"
        lines.append(
            f"| {c.key} | {c.throughput.text(3) if c.throughput else '–'} | {c.p99.text(3) if c.p99 else '–'} | {verdict} |"
        )
    return "\n".join(lines)


def comparability_notes(old_records: Records, new_records: Records) -> list[str]:
    """What differs between the two result sets besides the code: stream, dataset, load, engines."""
    firsts = []
    for records in (old_records, new_records):
        runs = [r for r in records if r.get("kind") == "run"]
        firsts.append(runs[0] if runs else {})
    notes = []
    for field_name in ("stream_hash", "dataset_hash", "load", "engines", "machine"):
        old, new = firsts[0].get(field_name), firsts[1].get(field_name)
        if old != new:
            notes.append(f"not like for like: {field_name} differs ({old} vs {new})")
    return notes


def speed_note(old_records: Records, new_records: Records) -> str | None:
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
