"""One measured run of `reclab bench`: a server variant up, locust load, a measurement window
with /metrics and per-process CPU sampled at its edges, everything it started stopped again."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import psutil
import redis

from reclab.analysis.flags import run_flags
from reclab.host.cores import CorePlan, cpu_seconds, pin
from reclab.host.machine import speed_index
from reclab.host.processes import ProcessGroup
from reclab.load.driver import LoadResult, start_load, wait_load
from reclab.results.config import RunConfig
from reclab.results.record import BenchInfo, Latency, Measurement, RunRecord, ServerTiming
from reclab.run.metrics import MetricsDelta
from reclab.run.server import RunningServer, start_server
from reclab.services.network import delayed
from reclab.services.start import Endpoints
from workloads.spec import LoadModel


@dataclass
class BenchContext:
    """What every run of one bench shares."""

    load: LoadModel
    endpoints: Endpoints
    paths_file: Path  # the request stream, one path per line
    seed: int  # the stream's seed, which also seeds open-loop arrivals
    work_dir: Path
    rules: Path
    bench: BenchInfo
    cores: CorePlan | None = None


@dataclass
class Measured:
    """What `measure` returns for the record of a successful run."""

    measurement: Measurement
    flags: list[str] = field(default_factory=list)
    added_delay_ms: dict[str, float] = field(default_factory=dict)
    machine_speed: float | None = None


ServerHook = Callable[[RunningServer], None]


def _sleep_until(deadline: float, alive: Callable[[], bool]) -> bool:
    while time.monotonic() < deadline:
        if not alive():
            return False
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return True


def _flush_embedded_redis(endpoints: Endpoints) -> None:
    if endpoints.redis_url and "embedded" in endpoints.redis_engine:
        client = redis.Redis.from_url(endpoints.redis_url)
        try:
            client.flushdb()
        finally:
            client.close()


def measure(ctx: BenchContext, config: RunConfig, on_server: ServerHook | None = None) -> Measured:
    """One run: server up, load, measurement window, server down. Raises if the run fails.

    Everything the run starts (delay proxies, server, locust) belongs to the run's own process
    group, so it is stopped when the run ends, whether it succeeded, failed or was interrupted.
    """
    machine_speed = speed_index()
    run_dir = ctx.work_dir / uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True)
    _flush_embedded_redis(ctx.endpoints)
    with ProcessGroup() as group:
        endpoints, proxies, added_ms = ctx.endpoints, [], {}
        if config.delay_ms > 0:
            net = delayed(group, ctx.endpoints, config.delay_ms, run_dir)
            endpoints, proxies, added_ms = net.endpoints, net.proxies, net.added_ms
        server = start_server(group, config.framework, config.variant, endpoints, run_dir, rules=ctx.rules)
        if on_server is not None:
            on_server(server)
        run = start_load(group, server.base_url, ctx.paths_file, ctx.load, ctx.seed, run_dir)
        if ctx.cores:
            pin([server.child.pid], ctx.cores.server)
            pin([c.pid for c in [*run.children, *proxies]], ctx.cores.others)
        pids: dict[str, int | list[int]] = {
            "server": server.child.pid,
            **endpoints.pids,
            "generator": [c.pid for c in run.children],
        }
        alive = server.child.alive
        if not _sleep_until(run.measure_start, alive):
            raise RuntimeError(f"server exited during warm-up (code {server.child.popen.poll()})")
        cpu_before, metrics_before = cpu_seconds(pids), server.get_json("/metrics")
        if not _sleep_until(run.measure_end, alive):
            raise RuntimeError(f"server exited during measurement (code {server.child.popen.poll()})")
        cpu_after, metrics_after = cpu_seconds(pids), server.get_json("/metrics")
        result = wait_load(group, run)
        if not alive():
            raise RuntimeError(f"server exited before the end of the run (code {server.child.popen.poll()})")
    if result.ok == 0:
        raise RuntimeError(f"no request succeeded in the measurement window (errors: {result.errors or 'none recorded'})")
    cpu = {name: round(cpu_after[name] - cpu_before[name], 4) for name in cpu_after}
    generator_cores = len(ctx.cores.others) if ctx.cores else (psutil.cpu_count() or 1)
    delta = MetricsDelta.between(metrics_before, metrics_after)
    measurement = _measurement(result, cpu, delta, min(ctx.load.processes, generator_cores), metrics_after.get("loop"))
    flags = run_flags(measurement, ctx.load.mode, result.missing_processes)
    return Measured(measurement, flags, added_ms, machine_speed)


def _measurement(
    result: LoadResult, cpu: dict[str, float], delta: MetricsDelta, generator_cores: int, loop: str | None
) -> Measurement:
    latency = result.latency_us()
    timing = delta.server_timing_ms()
    return Measurement(
        throughput_rps=round(result.throughput, 2),
        requests_ok=result.ok,
        requests_sent=result.sent,
        late_starts=result.late_starts,
        unfinished=result.unfinished,
        window_s=round(result.duration_s, 3),
        latency_us=msgspec.convert(latency, Latency) if latency else None,
        errors=result.errors,
        error_count=sum(result.errors.values()),
        cpu_s=cpu,
        generator_cpu_share=round(cpu.get("generator", 0.0) / result.duration_s / generator_cores, 3),
        server_cpu_ms_per_request=round(cpu.get("server", 0.0) * 1000 / max(1, delta.served), 4),
        served_in_window=delta.served,
        db_ops_per_request=round(delta.db_ops_per_request, 3),
        db_round_trips_per_request=round(delta.db_round_trips_per_request, 3),
        cache_hit_ratio=None if delta.cache_hit_ratio is None else round(delta.cache_hit_ratio, 4),
        server_timing_ms=ServerTiming(**{k: round(v, 4) for k, v in timing.items()}),
        server_loop=loop,
        hdr=result.histogram.encode().decode("ascii"),
    )


def attempt(record: RunRecord, run: Callable[[], Measured]) -> RunRecord:
    """`record` completed with what `run` measured, or marked failed with the error; never raises for
    a failed run (Ctrl-C and SystemExit still propagate)."""
    started = time.time()
    try:
        measured = run()
        done = msgspec.structs.replace(
            record,
            status="ok",
            measured=measured.measurement,
            flags=measured.flags,
            added_delay_ms=measured.added_delay_ms,
            machine_speed=measured.machine_speed,
        )
    except Exception as error:
        done = msgspec.structs.replace(record, status="failed", error=f"{type(error).__name__}: {error}"[:2000], flags=["failed"])
    return msgspec.structs.replace(done, started_at=started, wall_s=round(time.time() - started, 2))
