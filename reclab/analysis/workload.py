"""What the measured work was, per variant: the load each open phase offered against its nominal
rate (and how a replayed trace was paced), the database's work per request in portable units
(documents and bytes returned, documents examined where the engine says) beside the engine's own
time, and the cost of a request by the size of its user's history."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from reclab.analysis.summary import VariantSummary
from reclab.results.record import PhaseResult
from servers.core.history import BUCKETS
from workloads.spec import Phase


@dataclass(frozen=True)
class OfferedLoad:
    """One open phase over a result set's runs: its nominal rate and the rates its windows offered."""

    phase: str
    nominal_rps: float
    offered_rps: tuple[float, float, float] | None  # lowest, median, highest over runs
    speedup: tuple[float, float, float] | None  # a replayed trace: recorded seconds per replayed second
    pauses_shortened: int  # a replayed trace: recorded pauses cut to the window's cap, over every run
    runs: int


@dataclass(frozen=True)
class DatabaseWork:
    """A variant's database work per request in one phase (medians over its runs)."""

    key: str
    ops: float | None
    round_trips: float | None
    docs: float | None
    bytes: float | None
    examined: float | None  # None: the engine does not say
    db_ms: float | None  # the server's time waiting on the database (Server-Timing)
    engine_cpu_ms: float | None  # the database processes' CPU per request served


@dataclass(frozen=True)
class HistoryRow:
    """One history-size bucket of one variant, over every run's phase: requests, and per request the
    documents returned and the server's database, app and total time (weighted by requests)."""

    history: str
    requests: int
    docs: float
    db_ms: float
    app_ms: float
    total_ms: float


def offered_load(phases: tuple[Phase, ...], summaries: list[VariantSummary]) -> list[OfferedLoad]:
    out = []
    for phase in (p for p in phases if p.mode == "open"):
        measured = [p for s in summaries for p in s.phases(phase.name)]
        offered = [p.offered_rps for p in measured if p.offered_rps is not None]
        speedups = [p.replay.speedup for p in measured if p.replay is not None and p.replay.speedup is not None]
        shortened = sum(p.replay.pauses_shortened for p in measured if p.replay is not None)
        out.append(OfferedLoad(phase.name, phase.rate, _spread(offered), _spread(speedups), shortened, len(measured)))
    return out


def database_work(summary: VariantSummary, phase: str) -> DatabaseWork:
    def median(read: Callable[[PhaseResult], float | None]) -> float | None:
        return summary.phase_median(phase, read)

    return DatabaseWork(
        key=summary.key,
        ops=median(lambda p: p.db_ops_per_request),
        round_trips=median(lambda p: p.db_round_trips_per_request),
        docs=median(lambda p: p.db_docs_per_request),
        bytes=median(lambda p: p.db_bytes_per_request),
        examined=median(lambda p: p.db_examined_per_request),
        db_ms=median(lambda p: p.server_timing_ms.db),
        engine_cpu_ms=median(_engine_cpu_ms),
    )


def by_history(summary: VariantSummary, phase: str) -> list[HistoryRow]:
    """Every bucket the variant's runs served in `phase`, smallest histories first."""
    totals: dict[str, list[float]] = {}
    for measured in summary.phases(phase):
        for cost in measured.by_history:
            n = float(cost.requests)
            row = totals.setdefault(cost.history, [0.0] * 5)
            for i, value in enumerate((n, cost.docs_per_request * n, cost.db_ms * n, cost.app_ms * n, cost.total_ms * n)):
                row[i] += value
    rows = []
    for label in BUCKETS:
        if label in totals and totals[label][0]:
            n, docs, db, app, total = totals[label]
            rows.append(HistoryRow(label, int(n), docs / n, db / n, app / n, total / n))
    return rows


def _engine_cpu_ms(phase: PhaseResult) -> float | None:
    seconds = sum(v for name, v in phase.cpu.processes.items() if name.split(".", 1)[0] == "database")
    return seconds * 1000 / phase.served if phase.served and seconds else None


def _spread(values: list[float]) -> tuple[float, float, float] | None:
    return (min(values), statistics.median(values), max(values)) if values else None
