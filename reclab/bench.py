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
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from reclab import REPORTS, environment
from reclab.affinity import core_plan, pin
from reclab.load import STARTUP_S
from reclab.matrix import BASELINE, RunConfig, build_matrix
from reclab.measure import BenchContext, ServerHook, attempt, measure
from reclab.processes import ProcessGroup, stop_on_signals
from reclab.progress import Progress
from reclab.results import ResultsFile, run_key
from reclab.services import start_services
from servers.core.rules import load_rules
from workloads.dataset import generate
from workloads.spec import load_spec
from workloads.stream import build_stream, check_services
from workloads.tomlcheck import SpecError

SCHEMA = 1
CEILING_USERS = 32
SERVER_OVERHEAD_S = 1.5  # start, scrape, stop: for the time-left estimate


def run_bench(args: argparse.Namespace, on_server: ServerHook | None = None) -> int:
    spec = load_spec(args.spec)
    rules = load_rules(args.rules)
    check_services(spec, rules)
    load = spec.load.quick() if args.quick else spec.load
    if args.users:
        load = replace(load, users=args.users)
    if args.processes:
        load = replace(load, processes=args.processes)
    if load.users < load.processes:
        raise SpecError("--users", "", f"must be at least --processes ({load.processes}): every locust process needs a user")
    repeats = args.repeats or (2 if args.quick else 3)
    configs = build_matrix(args.matrix, BASELINE, args.delay_ms)
    if args.frameworks:
        configs = [c for c in configs if c.framework in args.frameworks]
    plan = [(repeat, order, config) for repeat in range(repeats) for order, config in enumerate(configs)]
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    _point_latest_at(out)
    results = ResultsFile(out / "results.jsonl")
    if not args.resume and results.read():
        raise SpecError(results.path, "", "already holds results: pass --resume to finish that bench, or choose another --out")
    done = results.finished_keys() if args.resume else set()

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

    bench_id = f"{stream.hash}-{int(time.time())}"
    per_run_s = STARTUP_S + load.warmup_s + load.duration_s + SERVER_OVERHEAD_S
    failures = 0
    with stop_on_signals(), ProcessGroup() as group:
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
        ctx = BenchContext(spec, load, endpoints, paths_file, work_dir, args.rules, common, cores)
        if not args.no_ceiling and "ceiling:#0" not in done:
            results.append(measure_ceiling(ctx))
        if not args.no_warmup_run and any(run_key({"kind": "run", "key": c.key, "repeat": r}) not in done for r, _, c in plan):
            results.append(warm_services(ctx, configs[0]))
        progress = Progress(len(plan), per_run_s)
        for index, (repeat, order, config) in enumerate(plan):
            record = {**common, "kind": "run", "key": config.key, "config": config.as_dict(), "repeat": repeat,
                      "order": order, "sequence": index}  # fmt: skip
            if run_key(record) in done:
                progress.skip()
                continue
            progress.show(config.key, repeat, repeats)
            attempt(record, partial(measure, ctx, config, on_server))
            failures += record["status"] != "ok"
            results.append(record)
            progress.done(record)
    progress.finish()
    print(f"results: {results.path} ({len(plan)} runs, {failures} failed)")
    return 0 if failures == 0 else 3


def warm_services(ctx: BenchContext, config: RunConfig) -> dict[str, Any]:
    """One unscored run of the first variant: a freshly loaded database (and cache) serves its first
    minutes slower, which would otherwise bias whichever variant runs first."""
    record = {**ctx.common, "kind": "warmup", "key": config.key, "repeat": 0, "config": config.as_dict()}
    attempt(record, lambda: measure(ctx, config))
    shown = f"{record['throughput_rps']:.0f} req/s" if record["status"] == "ok" else f"failed: {record['error']}"
    print(f"services warm-up run ({config.key}): {shown}, not part of the results")
    return record


def _point_latest_at(out: Path) -> None:
    """reports/latest names the newest result folder in reports/, for `reclab report` and flamegraphs."""
    if out.resolve().parent != REPORTS.resolve():
        return
    latest = REPORTS / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(out.resolve().name)


def measure_ceiling(ctx: BenchContext) -> dict[str, Any]:
    """The generator's own ceiling: closed loop against Sanic's /health (no database, no cache)."""
    hello_paths = ctx.work_dir / "hello.txt"
    hello_paths.write_text("/health")
    hello_load = replace(ctx.load, mode="closed", users=max(CEILING_USERS, ctx.load.processes))
    hello = replace(ctx, load=hello_load, paths_file=hello_paths)
    record = {**ctx.common, "kind": "ceiling", "key": "", "repeat": 0, "config": {"framework": "sanic", "route": "/health"}}
    attempt(record, lambda: measure(hello, BASELINE.with_factor("cache", "none")))  # no cache: no Redis needed
    shown = (
        f"{record['throughput_rps']:.0f} req/s, generator CPU {record['generator_cpu_share']:.0%}"
        if record["status"] == "ok"
        else record["error"]
    )
    print(f"generator ceiling (sanic /health): {shown}")
    return record
