"""Reads and writes apart, per variant and phase: each kind's throughput, p99 and errors, as medians
over the variant's runs, for the phases whose stream entries included writes (POST /events)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from reclab.analysis.summary import VariantSummary
from reclab.results.record import PhaseResult, Traffic


@dataclass(frozen=True)
class KindFigures:
    """One kind of entry (reads or writes) of one variant's phase: medians over runs."""

    rps: float | None  # successes per second of the window
    p99_ms: float | None
    errors: int  # every run together
    requests: int  # every run together


@dataclass(frozen=True)
class TrafficRow:
    key: str
    phase: str
    runs: int
    reads: KindFigures
    writes: KindFigures

    @property
    def write_share(self) -> float:
        """Writes among the phase's entries, every run together."""
        total = self.reads.requests + self.writes.requests
        return self.writes.requests / total if total else 0.0


def _figures(measured: list[Traffic]) -> KindFigures:
    def median(read: Callable[[Traffic], float | None]) -> float | None:
        values = [v for t in measured if (v := read(t)) is not None]
        return statistics.median(values) if values else None

    return KindFigures(
        rps=median(lambda t: t.rps),
        p99_ms=median(lambda t: t.p99_ms),
        errors=sum(t.error_count for t in measured),
        requests=sum(t.requests for t in measured),
    )


def traffic_rows(summaries: dict[str, VariantSummary], phases: list[str]) -> list[TrafficRow]:
    """A row per variant (A/A copies left out) and phase (in `phases`' order) that had writes."""
    rows = []
    for phase in phases:
        for key, summary in summaries.items():
            if summary.role == "aa":
                continue
            split: list[PhaseResult] = [p for p in summary.phases(phase) if p.reads is not None and p.writes is not None]
            if split:
                reads = _figures([p.reads for p in split if p.reads is not None])
                writes = _figures([p.writes for p in split if p.writes is not None])
                rows.append(TrafficRow(key, phase, len(split), reads, writes))
    return rows
