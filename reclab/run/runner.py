"""The matrix runner of `reclab bench`.

For each run of the matrix (variants interleaved, A B C A B C ..., repeated): start the server
variant as a subprocess against shared services (Redis flushed between runs), drive it with the
deterministic request stream through locust, warm up, measure, scrape /metrics, record the CPU
time of every process (server, database, cache, delay proxies, generator), stop — and append one
record to DIR/results.jsonl. A failed run is recorded as failed and the matrix goes on; Ctrl-C stops
every child process. The generator's own ceiling (hello-world route) is measured first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import msgspec

from reclab.errors import UsageError
from reclab.host import machine
from reclab.host.cores import core_plan, pin
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.driver import STARTUP_S
from reclab.results.config import RunConfig
from reclab.results.file import ResultsFile
from reclab.results.record import BenchInfo, Cores, Engines, RunRecord, Seeds, SpecRef
from reclab.run.matrix import BASELINE, build_matrix
from reclab.run.measure import BenchContext, ServerHook, attempt, measure
from reclab.run.progress import Progress
from reclab.run.workload import PreparedWorkload
from reclab.services.start import Endpoints, start_services
from workloads.spec import LoadModel

CEILING_USERS = 32
SERVER_OVERHEAD_S = 1.5  # start, scrape, stop: for the time-left estimate


@dataclass(frozen=True)
class BenchOptions:
    """How `reclab bench` runs its matrix (the command's flags, resolved)."""

    matrix: str = "ofat"
    repeats: int = 3
    quick: bool = False
    delay_ms: float = 0.0
    frameworks: tuple[str, ...] | None = None
    ceiling: bool = True
    warmup_run: bool = True
    pin_cores: bool = True
    resume: bool = False


def bench_load(load: LoadModel, *, quick: bool, users: int | None, processes: int | None) -> LoadModel:
    """The spec's load with the command's overrides; every locust process needs a user."""
    load = load.quick() if quick else load
    if users:
        load = replace(load, users=users)
    if processes:
        load = replace(load, processes=processes)
    if load.users < load.processes:
        raise UsageError(
            f"--users ({load.users}) must be at least --processes ({load.processes}): every locust process needs a user"
        )
    return load


def run_matrix(
    workload: PreparedWorkload,
    load: LoadModel,
    options: BenchOptions,
    out: Path,
    *,
    mongo_uri: str | None,
    redis_url: str | None,
    rules: Path,
    on_server: ServerHook | None = None,
) -> int:
    """Run every (repeat, variant) of the matrix into OUT/results.jsonl; 0 if all succeeded, 3 if some failed."""
    configs = build_matrix(options.matrix, BASELINE, options.delay_ms)
    if options.frameworks:
        configs = [c for c in configs if c.framework in options.frameworks]
    plan = [(repeat, order, config) for repeat in range(options.repeats) for order, config in enumerate(configs)]
    results = ResultsFile(out / "results.jsonl")
    if not options.resume and results.read():
        raise UsageError(f"{results.path} already holds results: pass --resume to finish that bench, or choose another --out")
    done = results.finished_keys() if options.resume else set()
    print(
        f"spec {workload.spec.path}: dataset {workload.dataset.content_hash()}, stream {workload.stream.hash} "
        f"({len(workload.stream.paths)} requests), {load.mode} loop, {len(configs)} variants x {options.repeats} repeats"
    )
    work_dir = workload.paths_file.parent
    failures = 0
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(
            group, Path(workload.spec.path), out / "logs", mongo_uri=mongo_uri, redis_url=redis_url,
            need_redis=any(c.variant.needs_redis for c in configs),
        )  # fmt: skip
        cores = core_plan(options.pin_cores)
        if cores:
            pin(list(endpoints.pids.values()), cores.others)
        info = _bench_info(workload, load, options, endpoints, cores.as_dict() if cores else None)
        ctx = BenchContext(load, endpoints, workload.paths_file, workload.spec.requests.seed, work_dir, rules, info, cores)
        if options.ceiling and "ceiling:ceiling#0" not in done:
            results.append(measure_ceiling(ctx))
        if options.warmup_run and any(f"run:{c.key}#{r}" not in done for r, _, c in plan):
            results.append(warm_services(ctx, configs[0]))
        progress = Progress(len(plan), STARTUP_S + load.warmup_s + load.duration_s + SERVER_OVERHEAD_S)
        for index, (repeat, order, config) in enumerate(plan):
            record = RunRecord(kind="run", key=config.key, config=config, repeat=repeat, order=order, sequence=index, bench=info)
            if record.run_key in done:
                progress.skip()
                continue
            progress.show(config.key, repeat, options.repeats)
            record = attempt(record, partial(measure, ctx, config, on_server))
            failures += record.status != "ok"
            results.append(record)
            progress.done(record)
    progress.finish()
    print(f"results: {results.path} ({len(plan)} runs, {failures} failed)")
    return 0 if failures == 0 else 3


def _bench_info(
    workload: PreparedWorkload, load: LoadModel, options: BenchOptions, endpoints: Endpoints, cores: dict[str, list[int]] | None
) -> BenchInfo:
    spec = workload.spec
    return BenchInfo(
        bench_id=f"{workload.stream.hash}-{int(time.time())}",
        spec=SpecRef(path=spec.path, name=spec.name),
        seed=Seeds(dataset=spec.dataset.seed, requests=spec.requests.seed),
        dataset_hash=endpoints.dataset_hash,
        stream_hash=workload.stream.hash,
        versions=machine.versions(),
        commit=machine.git_commit(),
        machine=machine.machine(),
        engines=Engines(mongo=endpoints.mongo_engine, redis=endpoints.redis_engine),
        load=load,
        quick=options.quick,
        matrix=options.matrix,
        repeats=options.repeats,
        cores=msgspec.convert(cores, Cores) if cores else None,
    )


def warm_services(ctx: BenchContext, config: RunConfig) -> RunRecord:
    """One unscored run of the first variant: a freshly loaded database (and cache) serves its first
    minutes slower, which would otherwise bias whichever variant runs first."""
    record = attempt(RunRecord(kind="warmup", key=config.key, config=config, bench=ctx.bench), lambda: measure(ctx, config))
    shown = f"{record.measured.throughput_rps:.0f} req/s" if record.measured else f"failed: {record.error}"
    print(f"services warm-up run ({config.key}): {shown}, not part of the results")
    return record


def measure_ceiling(ctx: BenchContext) -> RunRecord:
    """The generator's own ceiling: closed loop against Sanic's /health (no database, no cache)."""
    hello_paths = ctx.work_dir / "hello.txt"
    hello_paths.write_text("/health")
    hello_load = replace(ctx.load, mode="closed", users=max(CEILING_USERS, ctx.load.processes))
    hello = replace(ctx, load=hello_load, paths_file=hello_paths)
    config = BASELINE.with_factor("cache", "none")  # no cache: no Redis needed
    record = RunRecord(kind="ceiling", key="ceiling", config=config, route="/health", bench=ctx.bench)
    record = attempt(record, lambda: measure(hello, config))
    shown = (
        f"{record.measured.throughput_rps:.0f} req/s, generator CPU {record.measured.generator_cpu_share:.0%}"
        if record.measured
        else record.error
    )
    print(f"generator ceiling (sanic /health): {shown}")
    return record
