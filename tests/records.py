"""Typed run records made by hand, for tests of results files, analysis and reports."""

from __future__ import annotations

from typing import Any

import msgspec
from hdrh.histogram import HdrHistogram

from reclab.results.config import RunConfig
from reclab.results.record import BenchInfo, Engines, Latency, Measurement, RunRecord, Seeds, ServerTiming, SpecRef
from workloads.spec import LoadModel

BENCH = BenchInfo(
    bench_id="test",
    spec=SpecRef(path="spec.toml", name="test"),
    seed=Seeds(dataset=1, requests=2),
    dataset_hash="d",
    stream_hash="s",
    versions={"python": "3.13"},
    commit="abc",
    machine={"cores": 2},
    engines=Engines(mongo="mongoeco (embedded)", redis="valkey (embedded)"),
    load=LoadModel(users=4),
)


def measurement(rps: float, p50_ms: float = 10.0, **fields: Any) -> Measurement:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value_ms in (p50_ms, p50_ms, p50_ms * 2, p50_ms * 4):
        histogram.record_value(int(value_ms * 1000))
    base: dict[str, Any] = {
        "throughput_rps": rps, "requests_ok": 4, "requests_sent": 4, "window_s": 1.0,
        "latency_us": Latency(p50=p50_ms * 1000, p90=p50_ms * 2000, p99=p50_ms * 4000, p99_9=p50_ms * 4000, max=p50_ms * 4000),
        "server_cpu_ms_per_request": 1.0, "served_in_window": 4, "db_ops_per_request": 2.0,
        "db_round_trips_per_request": 1.0, "cache_hit_ratio": 0.5, "hdr": histogram.encode().decode(),
        "server_timing_ms": ServerTiming(db=1.0, cache=0.5, app=0.5, total=2.0),
    }  # fmt: skip
    return Measurement(**{**base, **fields})


def record(config: RunConfig, repeat: int, rps: float, p50_ms: float = 10.0, order: int = 0, **fields: Any) -> RunRecord:
    """An ok run of `config` measuring `rps` (and `fields` of its measurement)."""
    return RunRecord(
        kind="run", key=config.key, config=config, repeat=repeat, order=order, bench=BENCH,
        measured=measurement(rps, p50_ms, **fields),
    )  # fmt: skip


def failed(config: RunConfig, repeat: int, error: str, order: int = 0) -> RunRecord:
    return RunRecord(
        kind="run", key=config.key, config=config, repeat=repeat, order=order, bench=BENCH,
        status="failed", error=error, flags=["failed"],
    )  # fmt: skip


def with_flags(r: RunRecord, flags: list[str], errors: dict[str, int]) -> RunRecord:
    assert r.measured is not None
    measured = msgspec.structs.replace(r.measured, errors=errors, error_count=sum(errors.values()))
    return msgspec.structs.replace(r, flags=flags, measured=measured)
