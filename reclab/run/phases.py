"""One measured phase as it goes into the run record: what the generator recorded (goodput, shed
answers and retries among it), what the server counted (/metrics), what the CPUs did, and from those
the flags and what limited the phase."""

from __future__ import annotations

import msgspec
from hdrh.histogram import HdrHistogram

from reclab.analysis.flags import bottleneck, phase_flags, utilisation
from reclab.host.cores import CpuUse
from reclab.load.driver import PhaseLoad
from reclab.results.record import (
    AdmissionLoad,
    Arrivals,
    CpuRecord,
    HistoryCost,
    Latency,
    PhaseResult,
    ReplayPace,
    ServerTiming,
    ShardLoad,
)
from reclab.run.metrics import AdmissionDelta, HistoryDelta, MetricsDelta
from workloads.loadplan import percentiles_us


def phase_result(
    load: PhaseLoad,
    cpu: CpuUse,
    metrics: MetricsDelta,
    *,
    shared_cores: list[int],
    counted_by_server: bool = True,
    added_delay_ms: dict[str, float] | None = None,
    examined: float | None = None,
) -> PhaseResult:
    """`counted_by_server` False: the route loaded is one the server's counters leave out (the
    generator's ceiling), so the requests served are the generator's successes. `examined`: the
    documents the database examined over the phase, where its engine says."""
    window = load.window
    is_open = window.mode == "open"
    served = metrics.served if counted_by_server and not metrics.restarted else load.ok
    record = CpuRecord(
        seconds=round(cpu.seconds, 4),
        processes={k: round(v, 5) for k, v in cpu.process_seconds.items()},
        core_busy={k: round(v, 4) for k, v in cpu.core_busy.items()},
        core_steal={k: round(v, 4) for k, v in cpu.core_steal.items()},
    )
    used = utilisation(record, shared_cores)
    server_ms = cpu.process_seconds.get("server", 0.0) * 1000 - metrics.pace_cpu_ns / 1e6
    phase = PhaseResult(
        name=window.name,
        mode=window.mode,
        window_s=round(window.seconds, 4),
        started=round(window.start, 4),
        nominal_rps=window.rate if is_open else None,
        offered_rps=round(load.expected / window.seconds, 3) if is_open and window.seconds else None,
        replay=_replay(load),
        arrivals=Arrivals(expected=load.expected, sent=load.sent, unsent=load.unsent) if is_open else None,
        ok=load.ok,
        errors=dict(sorted(load.errors.items())),
        unfinished=load.unfinished,
        late_starts=load.late_starts,
        held_back=load.held_back,
        throughput_rps=round(load.throughput, 3),
        latency_us=_latency(load.histogram),
        hdr=load.histogram.encode().decode("ascii"),
        served=served,
        server_cpu_ms_per_request=round(server_ms / served, 5) if served and not metrics.restarted else None,
        pace_us=None if metrics.pace_us is None else round(metrics.pace_us, 3),
        db_ops_per_request=round(metrics.db_ops_per_request, 3),
        db_round_trips_per_request=round(metrics.db_round_trips_per_request, 3),
        db_docs_per_request=round(metrics.db_docs_per_request, 3) if counted_by_server else None,
        db_bytes_per_request=_round(metrics.db_bytes_per_request, 1) if counted_by_server else None,
        db_examined_per_request=round(examined / served, 3) if examined is not None and served else None,
        cache_hit_ratio=None if metrics.cache_hit_ratio is None else round(metrics.cache_hit_ratio, 4),
        server_timing_ms=ServerTiming(**{k: round(v, 4) for k, v in metrics.server_timing_ms().items()}),
        cpu=record,
        utilisation=used,
        bottleneck=bottleneck(used),
        added_delay_ms=added_delay_ms or {},
        shards=[
            ShardLoad(ops=ops, round_trips=ops, time_ms=round(ms, 3), cpu_s=_round(cpu.process_seconds.get(f"database.{i}")))
            for i, (ops, ms) in enumerate(metrics.shards)
        ],
        imbalance=None if metrics.imbalance is None else round(metrics.imbalance, 4),
        by_history=[_history(row) for row in metrics.by_history],
        objective_ms=load.objective_ms,
        goodput_rps=_round(load.goodput, 3),
        good=load.good,
        shed=load.shed,
        latency_ok_us=_latency(load.ok_histogram),
        hdr_ok=load.ok_histogram.encode().decode("ascii") if load.objective_ms is not None else "",
        latency_shed_us=_latency(load.shed_histogram),
        latency_shed_sent_us=_latency(load.shed_sent_histogram),
        retries=load.retries,
        retried_ok=load.retried_ok,
        admission=_admission(metrics.admission),
    )
    flags = phase_flags(phase) + (["server_restarted"] if metrics.restarted else [])
    return msgspec.structs.replace(phase, flags=flags)


def _admission(delta: AdmissionDelta | None) -> AdmissionLoad | None:
    if delta is None:
        return None
    waited = round(delta.queue_ms / delta.admitted, 4) if delta.admitted else None
    return AdmissionLoad(mode=delta.mode, admitted=delta.admitted, shed=delta.shed, shed_late=delta.shed_late,
                         queue_ms_per_admitted=waited, limit=delta.limit)  # fmt: skip


def _latency(histogram: HdrHistogram) -> Latency | None:
    """A histogram's percentiles; None when nothing was recorded."""
    latency = percentiles_us(histogram)
    return msgspec.convert(latency, Latency) if latency else None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _replay(load: PhaseLoad) -> ReplayPace | None:
    pace = load.pace
    if pace is None:
        return None
    speedup = None if pace.speedup is None else round(pace.speedup, 4)
    return ReplayPace(speedup=speedup, recorded_s=round(pace.recorded_s, 3), pauses_shortened=pace.pauses_shortened)


def _history(row: HistoryDelta) -> HistoryCost:
    n = row.requests
    return HistoryCost(
        history=row.history,
        requests=n,
        docs_per_request=round(row.docs / n, 2),
        db_ms=round(row.db_ms / n, 4),
        app_ms=round(row.app_ms / n, 4),
        total_ms=round(row.total_ms / n, 4),
    )
