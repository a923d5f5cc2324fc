"""How a replayed log's recorded gaps become one open phase's arrival times.

An open phase on a trace offers its nominal `rate` on average over its window: it holds exactly
`round(rate x duration)` arrivals (at least one), the next entries of the stream in log order. Their
recorded gaps keep their shape (a burst stays a burst, a quiet stretch stays quiet) and are scaled by
one factor per window so that the arrivals span the window: the first is due at its start and the
one after the last would be due at its end.

A long pause in the log (a night, a weekend) would otherwise take most of the window and squeeze
the rest into a spike: no replayed gap is longer than `MAX_PAUSE_GAPS` mean gaps of the window
(duration / arrivals), and the scale is chosen with that cap in force, so a pause takes at most
that share of the window and the other gaps keep their proportions. A window whose recorded gaps
are all zero (a log without usable time) is paced evenly.

The recorded gaps themselves come from `workloads.stream.spread_moments`: events sharing one
timestamp second are spread evenly across that second, in log order.

Arrivals are stream entries, reads and writes alike: in a replay with writes, an interaction's write
and the read that follows it (gap 0) are two arrivals at one moment, so a window offers its `rate` in
entries (the nominal and offered rates of a phase count both), and covers fewer interactions than
entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_PAUSE_GAPS = 10.0  # a replayed gap is at most this many mean gaps of its window


@dataclass(frozen=True)
class WindowPace:
    """How one window was paced: `speedup` is recorded seconds per replayed second (for the gaps left
    as recorded); `recorded_s` the log time its arrivals cover (the gap after the last included);
    `pauses_shortened` the gaps cut to the cap."""

    arrivals: int
    speedup: float | None  # None: paced evenly (no recorded time to scale)
    recorded_s: float
    pauses_shortened: int


def arrivals_in(rate: float, duration_s: float) -> int:
    """The arrivals a paced window holds: its nominal rate times its length, at least one."""
    return max(1, round(rate * duration_s))


def paced_offsets(gaps: Sequence[float], duration_s: float) -> tuple[list[float], WindowPace]:
    """Due times (seconds from the window's start) of `len(gaps)` arrivals whose recorded gaps are
    `gaps`: gaps[j] is the time from arrival j to arrival j+1 (the last one: to the entry after the
    window). The offsets start at 0 and the scaled gaps add up to `duration_s`."""
    n = len(gaps)
    if n == 0:
        return [], WindowPace(0, None, 0.0, 0)
    cap = MAX_PAUSE_GAPS * duration_s / n
    recorded = float(sum(gaps))
    positive = [g for g in gaps if g > 0]
    if not positive or len(positive) * cap < duration_s:
        step = duration_s / n  # nothing to scale, or too few gaps to fill the window even at the cap: even pacing
        return [j * step for j in range(n)], WindowPace(n, None, recorded, 0)
    scale = _scale(positive, duration_s, cap)
    offsets, moment, shortened = [], 0.0, 0
    for gap in gaps:
        offsets.append(moment)
        replayed = gap * scale
        if replayed > cap:
            replayed, shortened = cap, shortened + 1
        moment += replayed
    return offsets, WindowPace(n, 1.0 / scale, recorded, shortened)


def _scale(positive: Sequence[float], duration_s: float, cap: float) -> float:
    """The factor s with sum(min(g * s, cap)) == duration_s (it exists: len(positive) * cap >= duration_s):
    with the k longest gaps at the cap, s = (duration_s - k * cap) / (the sum of the others), for the
    least k at which the longest of the others stays within the cap."""
    ordered = sorted(positive, reverse=True)
    rest = float(sum(ordered))
    for capped, longest in enumerate(ordered):
        scale = (duration_s - capped * cap) / rest
        if longest * scale <= cap:
            return scale
        rest -= longest
    return cap / ordered[-1]  # every gap at the cap: len(positive) * cap == duration_s
