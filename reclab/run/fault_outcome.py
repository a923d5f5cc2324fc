"""What the requests of a faulted window saw, from the generator's per-arrival trace: how many were
sent, answered (any HTTP status) and lost (sent, never answered), by status, the tail latency while
the fault was on and after it, and how long after its end the last failed or slow request was over."""

from __future__ import annotations

import numpy as np

from reclab.results.record import FaultRecord

SLOW_FLOOR_S = 0.1  # a request is slow above max(this, SLOW_FACTOR x the median before the fault)
SLOW_FACTOR = 5.0
Trace = list[tuple[float, float, str]]  # (due, latency, HTTP status or what happened instead), seconds


def _p99_ms(latencies: list[float]) -> float | None:
    return round(float(np.percentile(latencies, 99)) * 1000, 3) if latencies else None


def fault_outcome(name: str, trace: Trace, start_s: float, end_s: float) -> FaultRecord:
    """Account every arrival of the window; `start_s`/`end_s` are when the fault was really on."""
    sent = [(due, latency, what) for due, latency, what in trace if what != "unsent"]
    answered = [(due, latency, what) for due, latency, what in sent if what.isdigit()]
    by_status: dict[str, int] = {}
    for _, _, status in answered:
        by_status[status] = by_status.get(status, 0) + 1
    before = [latency for due, latency, what in answered if due < start_s and what.startswith("2")]
    slow_s = max(SLOW_FLOOR_S, SLOW_FACTOR * float(np.median(before))) if before else SLOW_FLOOR_S
    bad_until = [
        due + latency for due, latency, what in trace if due >= start_s and (not what.startswith("2") or latency > slow_s)
    ]
    return FaultRecord(
        name=name,
        start_s=round(start_s, 3),
        end_s=round(end_s, 3),
        sent=len(sent),
        answered=len(answered),
        unsent=len(trace) - len(sent),
        by_status=dict(sorted(by_status.items())),
        lost=len(sent) - len(answered),
        p99_during_ms=_p99_ms([latency for due, latency, _ in trace if start_s <= due < end_s]),
        p99_after_ms=_p99_ms([latency for due, latency, _ in trace if due >= end_s]),
        recovery_s=round(max(0.0, max(bad_until) - end_s), 3) if bad_until else 0.0,
    )
