"""`reclab bench`: the experiment runner.

For each run of the matrix (variants interleaved, A B C A B C ..., repeated): start the server
variant as a subprocess against shared services (Redis flushed between runs), drive it with the
deterministic request stream through locust, warm up, measure, scrape /metrics, record the CPU
time of every process (server, database, cache, delay proxies, generator), stop — and append one
line to DIR/results.jsonl. A failed run is recorded as failed and the matrix goes on; Ctrl-C stops
every child process. The generator's own ceiling (hello-world route) is measured first.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil
import redis

from reclab import environment
from reclab.affinity import CorePlan, core_plan, pin
from reclab.load import STARTUP_S, LoadResult, start_load, wait_load
from reclab.matrix import BASELINE, RunConfig, build_matrix
from reclab.network import delayed
from reclab.processes import ProcessGroup, terminate_on_sigterm
from reclab.progress import Progress
from reclab.results import ResultsFile, run_key
from reclab.server_process import RunningServer, start_server
from reclab.services import Endpoints, start_services
from servers.core.rules import load_rules
from workloads.dataset import generate
from workloads.spec import LoadModel, WorkloadSpec, load_spec
from workloads.stream import build_stream, check_services

SCHEMA = 1
GENERATOR_SATURATED = 0.85  # share of its cores above which the load generator is flagged
SCHEDULE_LAG = 0.01  # open loop: share of requests sent late above which the run is flagged
CEILING_USERS = 32
SERVER_OVERHEAD_S = 4.0  # start, scrape, stop: for the time-left estimate


@dataclass
class BenchContext:
    """What every run of one bench shares."""

    spec: WorkloadSpec
    load: LoadModel
    endpoints: Endpoints
    paths_file: Path
    stream_hash: str
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


def measure(
    group: ProcessGroup,
    ctx: BenchContext,
    config: RunConfig,
    paths_file: Path,
    on_server: ServerHook | None = None,
) -> dict[str, Any]:
    """One run: server up, load, measurement window, server down. Raises if the run fails."""
    run_dir = ctx.work_dir / uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True)
    _flush_embedded_redis(ctx.endpoints)
    endpoints, proxies, added_ms = ctx.endpoints, [], {}
    if config.delay_ms > 0:
        net = delayed(group, ctx.endpoints, config.delay_ms, run_dir)
        endpoints, proxies, added_ms = net.endpoints, net.proxies, net.added_ms
    server = start_server(group, config.framework, config.variant, endpoints, run_dir, rules=ctx.rules)
    try:
        if on_server is not None:
            on_server(server)
        run = start_load(group, server.base_url, paths_file, ctx.load, ctx.spec.requests.seed, run_dir)
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
    finally:
        group.stop(server.child)
        for proxy in proxies:
            group.stop(proxy)
    cpu = {name: round(cpu_after[name] - cpu_before[name], 4) for name in cpu_after}
    return _record_fields(result, cpu, metrics_before, metrics_after, ctx.load, added_ms)


def _record_fields(
    result: LoadResult,
    cpu: dict[str, float],
    before: dict[str, Any],
    after: dict[str, Any],
    load: LoadModel,
    added_ms: dict[str, float],
) -> dict[str, Any]:
    served = max(1, after["requests"] - before["requests"])
    hits = after["cache_hits"] - before["cache_hits"]
    misses = after["cache_misses"] - before["cache_misses"]
    generator_cores = min(load.processes, psutil.cpu_count() or 1)
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
    return {
        "throughput_rps": round(result.throughput, 2),
        "requests_ok": result.ok,
        "requests_sent": result.sent,
        "late_starts": result.late_starts,
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
        "added_delay_ms": added_ms,
        "hdr": result.histogram.encode().decode("ascii"),
        "flags": flags,
    }


def run_bench(args: argparse.Namespace, on_server: ServerHook | None = None) -> int:
    spec = load_spec(args.spec)
    rules = load_rules(args.rules)
    check_services(spec, rules)
    load = spec.load.quick() if args.quick else spec.load
    if args.users:
        load = replace(load, users=args.users)
    if args.processes:
        load = replace(load, processes=args.processes)
    repeats = args.repeats or (2 if args.quick else 3)
    configs = build_matrix(args.matrix, BASELINE, args.delay_ms)
    if args.frameworks:
        configs = [c for c in configs if c.framework in args.frameworks]
    plan = [(repeat, order, config) for repeat in range(repeats) for order, config in enumerate(configs)]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    _point_latest_at(out)
    results = ResultsFile(out / "results.jsonl")
    done = results.finished_keys() if args.resume else set()
    if not args.resume and results.path.exists() and results.read():
        print(f"appending to {results.path} (use --resume to skip runs already there)")

    dataset = generate(spec.dataset)
    stream = build_stream(spec, dataset)
    work_dir = out / "runs"
    work_dir.mkdir(exist_ok=True)
    paths_file = work_dir / f"stream-{stream.hash}.txt"
    paths_file.write_text("\n".join(stream.paths))
    print(
        f"spec {spec.path}: dataset {dataset.content_hash()}, stream {stream.hash} ({len(stream.paths)} requests), "
        f"{load.mode} loop, {len(configs)} variants x {repeats} repeats"
    )

    bench_id = uuid.uuid4().hex[:12]
    per_run_s = STARTUP_S + load.warmup_s + load.duration_s + SERVER_OVERHEAD_S
    failures = 0
    with terminate_on_sigterm(), ProcessGroup() as group:
        endpoints = start_services(
            group,
            Path(spec.path),
            out / "logs",
            mongo_uri=args.mongo_uri,
            redis_url=args.redis_url,
            need_redis=any(c.variant.needs_redis for c in configs),
        )
        common = {
            "schema": SCHEMA,
            "bench_id": bench_id,
            "spec": {"path": spec.path, "name": spec.name},
            "seed": {"dataset": spec.dataset.seed, "requests": spec.requests.seed},
            "dataset_hash": endpoints.dataset_hash,
            "stream_hash": stream.hash,
            "versions": environment.versions(),
            "commit": environment.git_commit(),
            "machine": environment.machine(),
            "engines": {"mongo": endpoints.mongo_engine, "redis": endpoints.redis_engine},
            "load": load.__dict__,
            "quick": bool(args.quick),
            "matrix": args.matrix,
            "repeats": repeats,
        }
        cores = core_plan(not args.no_pin)
        if cores:
            pin(list(endpoints.pids.values()), cores.others)
        common["cores"] = cores.as_dict() if cores else None
        ctx = BenchContext(spec, load, endpoints, paths_file, stream.hash, work_dir, args.rules, common, cores)
        if not args.no_ceiling and "ceiling:#0" not in done:
            results.append(measure_ceiling(group, ctx))
        if not args.no_warmup_run and any(run_key({"kind": "run", "key": c.key, "repeat": r}) not in done for r, _, c in plan):
            results.append(warm_services(group, ctx, configs[0], paths_file))
        progress = Progress(len(plan), per_run_s)
        for index, (repeat, order, config) in enumerate(plan):
            record_base = {
                **common,
                "kind": "run",
                "key": config.key,
                "config": config.as_dict(),
                "repeat": repeat,
                "order": order,
                "sequence": index,
            }
            if run_key(record_base) in done:
                progress.skip()
                continue
            progress.show(config.key, repeat, repeats)
            started = time.time()
            try:
                fields = measure(group, ctx, config, paths_file, on_server)
                record = {**record_base, "status": "ok", **fields}
            except Exception as error:  # a failed run is recorded and the matrix goes on
                failures += 1
                record = {
                    **record_base,
                    "status": "failed",
                    "error": f"{type(error).__name__}: {error}"[:2000],
                    "flags": ["failed"],
                }
            record.update(started_at=started, wall_s=round(time.time() - started, 2))
            results.append(record)
            progress.done(record)
    progress.finish()
    print(f"results: {results.path} ({len(plan)} runs, {failures} failed)")
    return 0 if failures == 0 else 3


def warm_services(group: ProcessGroup, ctx: BenchContext, config: RunConfig, paths_file: Path) -> dict[str, Any]:
    """One unscored run of the first variant: a freshly loaded database (and cache) serves its first
    minutes slower, which would otherwise bias whichever variant runs first."""
    record: dict[str, Any] = {**ctx.common, "kind": "warmup", "key": config.key, "repeat": 0, "config": config.as_dict()}
    try:
        record.update(status="ok", **measure(group, ctx, config, paths_file))
        print(f"services warm-up run ({config.key}): {record['throughput_rps']:.0f} req/s, not part of the results")
    except Exception as error:
        record.update(status="failed", error=f"{type(error).__name__}: {error}"[:2000], flags=["failed"])
        print(f"services warm-up run failed: {record['error']}")
    return record


def _point_latest_at(out: Path) -> None:
    """reports/latest (beside OUT) names the newest result folder, for `reclab report` and flamegraphs."""
    latest = out.resolve().parent / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(out.resolve().name)


def measure_ceiling(group: ProcessGroup, ctx: BenchContext) -> dict[str, Any]:
    """The generator's own ceiling: closed loop against Sanic's /health (no database, no cache)."""
    paths_file = ctx.work_dir / "hello.txt"
    paths_file.write_text("/health")
    hello = replace(ctx, load=replace(ctx.load, mode="closed", users=max(CEILING_USERS, ctx.load.processes)))
    record: dict[str, Any] = {
        **ctx.common,
        "kind": "ceiling",
        "key": "",
        "repeat": 0,
        "config": {"framework": "sanic", "route": "/health"},
    }
    started = time.time()
    try:
        record.update(status="ok", **measure(group, hello, BASELINE, paths_file))
    except Exception as error:
        record.update(status="failed", error=f"{type(error).__name__}: {error}"[:2000], flags=["failed"])
    record.update(started_at=started, wall_s=round(time.time() - started, 2))
    shown = (
        f"{record['throughput_rps']:.0f} req/s, generator CPU {record['generator_cpu_share']:.0%}"
        if record["status"] == "ok"
        else record["error"]
    )
    print(f"generator ceiling (sanic /health): {shown}")
    return record
