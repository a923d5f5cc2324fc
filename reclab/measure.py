"""One measured run of `reclab bench`: a server variant up, locust load, a measurement window
with /metrics and per-process CPU sampled at its edges, everything it started stopped again.
Returns the fields of the run's result line; raises if the run failed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import redis

from reclab.affinity import CorePlan, pin
from reclab.calibrate import speed_index
from reclab.load import LoadResult, start_load, wait_load
from reclab.matrix import RunConfig
from reclab.network import delayed
from reclab.processes import ProcessGroup
from reclab.server_process import RunningServer, start_server
from reclab.services import Endpoints
from workloads.spec import LoadModel, WorkloadSpec

GENERATOR_SATURATED = 0.85  # share of its cores above which the load generator is flagged
SCHEDULE_LAG = 0.01  # open loop: share of requests sent late above which the run is flagged


@dataclass
class BenchContext:
    """What every run of one bench shares."""

    spec: WorkloadSpec
    load: LoadModel
    endpoints: Endpoints
    paths_file: Path  # the request stream, one path per line
    work_dir: Path
    rules: Path
    common: dict[str, Any]
    cores: CorePlan | None = None


ServerHook = Callable[[RunningServer], None]


def cpu_seconds(pids: dict[str, int | list[int]]) -> dict[str, float]:
    """User + system CPU seconds so far of each named process (or group of processes)."""
    out = {}
    for name, pid_or_pids in pids.items():
        total = 0.0
        for pid in pid_or_pids if isinstance(pid_or_pids, list) else [pid_or_pids]:
            try:
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        out[name] = total
    return out


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


def measure(ctx: BenchContext, config: RunConfig, on_server: ServerHook | None = None) -> dict[str, Any]:
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
        run = start_load(group, server.base_url, ctx.paths_file, ctx.load, ctx.spec.requests.seed, run_dir)
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
    fields = _record_fields(result, cpu, metrics_before, metrics_after, ctx.load, min(ctx.load.processes, generator_cores))
    return {**fields, "added_delay_ms": added_ms, "machine_speed": machine_speed}


def _record_fields(
    result: LoadResult,
    cpu: dict[str, float],
    before: dict[str, Any],
    after: dict[str, Any],
    load: LoadModel,
    generator_cores: int,
) -> dict[str, Any]:
    served = max(1, after["requests"] - before["requests"])
    hits = after["cache_hits"] - before["cache_hits"]
    misses = after["cache_misses"] - before["cache_misses"]
    generator_share = cpu.get("generator", 0.0) / result.duration_s / generator_cores
    errors = sum(result.errors.values())
    flags = []
    if errors:
        flags.append("errors")
    if generator_share > GENERATOR_SATURATED:
        flags.append("generator_saturated")
    if load.mode == "open" and result.sent and result.late_starts / result.sent > SCHEDULE_LAG:
        flags.append("schedule_lag")
    if result.missing_processes:
        flags.append("generator_lost")
    if result.unfinished:
        flags.append("unfinished_requests")
    return {
        "throughput_rps": round(result.throughput, 2),
        "requests_ok": result.ok,
        "requests_sent": result.sent,
        "late_starts": result.late_starts,
        "unfinished": result.unfinished,
        "window_s": round(result.duration_s, 3),
        "latency_us": result.latency_us(),
        "errors": result.errors,
        "error_count": errors,
        "cpu_s": cpu,
        "generator_cpu_share": round(generator_share, 3),
        "server_cpu_ms_per_request": round(cpu.get("server", 0.0) * 1000 / served, 4),
        "served_in_window": after["requests"] - before["requests"],
        "db_ops_per_request": round((after["db_ops"] - before["db_ops"]) / served, 3),
        "db_round_trips_per_request": round((after["db_round_trips"] - before["db_round_trips"]) / served, 3),
        "cache_hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
        "server_timing_ms": {k: round((after["time_ms"][k] - before["time_ms"][k]) / served, 4) for k in after["time_ms"]},
        "server_loop": after.get("loop"),
        "hdr": result.histogram.encode().decode("ascii"),
        "flags": flags,
    }


def attempt(record: dict[str, Any], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Complete `record` with the fields `run` measures, or as failed with the error; never raises
    for a failed run (Ctrl-C and SystemExit still propagate)."""
    started = time.time()
    try:
        record.update(status="ok", **run())
    except Exception as error:
        record.update(status="failed", error=f"{type(error).__name__}: {error}"[:2000], flags=["failed"])
    record.update(started_at=started, wall_s=round(time.time() - started, 2))
    return record
