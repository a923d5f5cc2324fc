"""Typed run records made by hand, for tests of results files, analysis, reports and the regression gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from hdrh.histogram import HdrHistogram

from reclab.results.config import RunConfig
from reclab.results.file import ResultsFile
from reclab.results.record import (
    Arrivals,
    BenchInfo,
    CpuRecord,
    Engines,
    Latency,
    PhaseResult,
    RunRecord,
    Seeds,
    ServerTiming,
    SpecRef,
)
from reclab.run.matrix import AA_SUFFIX
from workloads.spec import LoadModel, Phase

BENCH = BenchInfo(
    bench_id="test",
    spec=SpecRef(path="spec.toml", name="test"),
    seed=Seeds(dataset=1, requests=2, order=3),
    dataset_hash="d",
    stream_hash="s",
    versions={"python": "3.13"},
    commit="abc",
    machine={"cores": 2},
    engines=Engines(mongo="mongoeco (embedded)", redis="valkey (embedded)"),
    load=LoadModel(users=4, phases=(Phase("open", "open", rate=10.0), Phase("closed", "closed"))),
    repeats=5,
)


def phase(name: str, rps: float, p50_ms: float = 10.0, cpu_ms: float = 1.0, **fields: Any) -> PhaseResult:
    histogram = HdrHistogram(1, 60_000_000, 3)
    for value_ms in (p50_ms, p50_ms, p50_ms * 2, p50_ms * 4):
        histogram.record_value(int(value_ms * 1000))
    base: dict[str, Any] = {
        "name": name, "window_s": 4.0, "ok": int(rps * 4), "throughput_rps": rps, "served": int(rps * 4),
        "latency_us": Latency(p50=p50_ms * 1000, p90=p50_ms * 2000, p99=p50_ms * 4000, p99_9=p50_ms * 4000, max=p50_ms * 4000),
        "server_cpu_ms_per_request": cpu_ms, "db_ops_per_request": 2.0, "db_round_trips_per_request": 1.0,
        "cache_hit_ratio": 0.5, "hdr": histogram.encode().decode(), "bottleneck": "server",
        "server_timing_ms": ServerTiming(db=1.0, cache=0.5, app=0.5, total=2.0),
        "cpu": CpuRecord(seconds=4.0, processes={"server": cpu_ms * rps * 4 / 1000}),
        "utilisation": {"server": cpu_ms * rps / 1000},
    }  # fmt: skip
    if name == "open":
        base |= {
            "mode": "open",
            "nominal_rps": 10.0,
            "offered_rps": 10.0,
            "arrivals": Arrivals(expected=int(rps * 4), sent=int(rps * 4), unsent=0),
        }
    return PhaseResult(**{**base, **fields})


def record(
    config: RunConfig,
    repeat: int,
    rps: float,
    p50_ms: float = 10.0,
    cpu_ms: float = 1.0,
    role: str = "variant",
    order: int = 0,
    bench: BenchInfo = BENCH,
) -> RunRecord:
    """An ok run of `config`: an open phase (p50 latency) and a closed one (capacity `rps`, `cpu_ms` per request)."""
    return RunRecord(
        kind="run", key=config.key + (AA_SUFFIX if role == "aa" else ""), role=role, config=config, repeat=repeat,
        order=order, sequence=repeat * 100 + order, bench=bench,
        phases=[phase("open", 10.0, p50_ms, cpu_ms * 2), phase("closed", rps, p50_ms * 1.5, cpu_ms)],
    )  # fmt: skip


def failed(config: RunConfig, repeat: int, error: str, order: int = 0) -> RunRecord:
    return RunRecord(
        kind="run", key=config.key, config=config, repeat=repeat, order=order, sequence=repeat * 100 + order, bench=BENCH,
        status="failed", error=error, flags=["failed"],
    )  # fmt: skip


def with_errors(r: RunRecord, errors: dict[str, int]) -> RunRecord:
    """The run with errors in its closed phase (and the flag they give)."""
    phases = [msgspec.structs.replace(p, errors=errors) if p.name == "closed" else p for p in r.phases]
    return msgspec.structs.replace(r, phases=phases, flags=["closed:errors"])


def write_results(folder: Path, records: list[RunRecord]) -> Path:
    """`records` as the results file of `folder` (a result set), which it returns."""
    results = ResultsFile(folder / "results.jsonl")
    for r in records:
        results.append(r)
    return folder


def section(md: str, title: str) -> str:
    """The text of a report's section `title` (up to the next section)."""
    assert f"## {title}" in md, f"no section {title!r}"
    return md.split(f"## {title}")[1].split("\n## ")[0]
