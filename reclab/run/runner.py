"""The matrix runner of `reclab bench`.

Every repeat runs every variant of the matrix once, in an order drawn afresh for each repeat from a
seed stored with the results (so slow drift of the machine cannot line up with one variant). Each
run is a fresh server subprocess with empty caches against shared services (see `measure`), and
appends one record to DIR/results.jsonl (`loop`, the run loop of every bench). A failed run is
recorded as failed and the matrix goes on; Ctrl-C stops every child process. First come the
generator's own ceiling (a hello-world route) and one unscored run that warms the services up.
Every run starts from the database as loaded: what a run's writes changed is put back after it
(`live_reset`), and each run of the fault matrix has the write probe beside its load (`write_probe`).
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import msgspec

from reclab.errors import UsageError
from reclab.host import machine
from reclab.host.cores import core_plan, pin
from reclab.host.machine import speed_index
from reclab.host.processes import Forker, ProcessGroup, stop_on_signals
from reclab.load.distributed import DistributedGenerator, LoadGens
from reclab.load.driver import Generator
from reclab.results.config import RunConfig
from reclab.results.record import BenchInfo, Cores, Engines, RunRecord, Seeds, SpecRef
from reclab.run.callgrind import InstructionCounter, InstructionWindow
from reclab.run.instructions import count_run
from reclab.run.live_reset import LiveData
from reclab.run.loop import RunLoop
from reclab.run.matrix import BASELINE, MatrixEntry, build_matrix
from reclab.run.measure import BenchContext, Measured, ServerHook, measure
from reclab.run.server import RunningServer
from reclab.run.workload import PreparedWorkload
from reclab.run.write_probe import ProbeSubject, WriteProbe, check_writes, probe_duration_s, probe_subject, with_writes
from reclab.services.engine_counters import EngineCounters
from reclab.services.start import Endpoints, start_services
from servers.core.limits import Limits
from servers.core.rules import load_rules
from servers.core.shards import shard_uris
from servers.core.uris import hidden
from workloads.spec import LoadModel, Phase
from workloads.writes import written_users

CEILING_USERS, CEILING_WARMUP = 32, 200  # the generator's ceiling: closed loop on /health
CEILING_S, QUICK_CEILING_S = 2.0, 1.0
ERROR_CHARS = 2000  # a failed run's error as recorded, at most
RUN_OVERHEAD_S = 3.0  # server and generator start, warm-up, stop: for the time-left estimate
MEASURES = ("time", "instructions", "both")  # timed phases; instructions counted under valgrind; each run both
COUNTING_S_PER_REQUEST = 0.15  # an instruction window's request under valgrind, for the time-left estimate


@dataclass(frozen=True)
class BenchOptions:
    """How `reclab bench` runs its matrix (the command's flags, resolved)."""

    matrix: str = "ofat"
    repeats: int = 5
    quick: bool = False
    delay_ms: float | None = None
    workers: int = 1  # every server of the matrix with this many worker processes
    frameworks: tuple[str, ...] | None = None
    ceiling: bool = True
    warmup_run: bool = True
    pin_cores: bool = True
    resume: bool = False
    order_seed: int | None = None  # None: drawn from the clock, and stored
    server_cores: int = 1  # cores the server's workers are spread over
    shards: int = 1  # embedded MongoDB servers the data is spread over
    loadgens: LoadGens | None = None  # load from `reclab loadgen` workers instead of local locust processes
    limits: Limits | None = None  # every server's deadlines and limits (None: the servers' defaults)
    measure: str = "time"  # time | instructions | both (MEASURES)
    window: InstructionWindow | None = None  # counting instructions: the slice of the stream they are counted over


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


def describe_load(load: LoadModel) -> str:
    """The warm-up and the measured phases, in a line."""
    phases = (f"{p.name} ({p.mode}{f' {p.rate:g}/s' if p.mode == 'open' else ''}, {p.duration_s:g} s)" for p in load.phases)
    return f"{load.warmup_requests} warm-up requests, then " + ", ".join(phases)


def open_bench(
    group: ProcessGroup,
    workload: PreparedWorkload,
    load: LoadModel,
    options: BenchOptions,
    out: Path,
    seed: int,
    *,
    mongo_uri: str | None,
    redis_url: str | None,
    rules: Path,
    need_redis: bool,
) -> BenchContext:
    """What every run of a bench shares, started in `group`: the cores' plan, the generator, the server
    zygote, the services (embedded unless URIs are given)."""
    work_dir = workload.paths_file.parent
    cores = core_plan(options.pin_cores, options.server_cores)
    # The generator and the server zygote import while the database loads.
    others = cores.others if cores else None
    generator = new_generator(group, load.processes, work_dir / "generator", others, options.loadgens)
    forker = Forker(group, work_dir / "zygote.log")
    counter = InstructionCounter(group, work_dir) if options.measure != "time" else None  # imports under valgrind meanwhile
    endpoints = start_services(
        group, Path(workload.spec.path), out / "logs", mongo_uri=mongo_uri, redis_url=redis_url, need_redis=need_redis,
        shards=options.shards,
    )  # fmt: skip
    if cores:
        zygotes = [forker.child.pid, *([counter.forker.child.pid] if counter else [])]
        pin([*endpoints.pids.values(), *zygotes, os.getpid()], cores.others)  # the lab stays off the server's core
    info = msgspec.structs.replace(
        bench_info(workload, load, options, endpoints, seed, cores.as_dict() if cores else None), rules=rules_version(rules)
    )
    engine = EngineCounters.probe(shard_uris(endpoints.mongo_uri))  # documents examined, where the engine says
    return BenchContext(load, endpoints, workload.paths_file, workload.spec.requests.seed, work_dir, rules, info, generator,
                        forker, cores, engine=engine, limits=options.limits, counter=counter, window=options.window,
                        timed=options.measure != "instructions")  # fmt: skip


def new_generator(
    group: ProcessGroup, processes: int, work_dir: Path, cores: list[int] | None, loadgens: LoadGens | None
) -> Generator:
    """Local locust processes, or a master waiting for `reclab loadgen` workers."""
    if loadgens is None:
        return Generator(group, processes, work_dir, cores)
    return DistributedGenerator(group, processes, work_dir, loadgens.address, loadgens.wait_s, cores)


def run_plan(entries: list[MatrixEntry], repeats: int, seed: int) -> list[tuple[int, int, MatrixEntry]]:
    """(repeat, order, entry) for every run: each repeat in its own random order, drawn from `seed`."""
    plan = []
    for repeat in range(repeats):
        shuffled = list(entries)
        random.Random(f"{seed}-{repeat}").shuffle(shuffled)
        plan += [(repeat, order, entry) for order, entry in enumerate(shuffled)]
    return plan


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
    entries: list[MatrixEntry] | None = None,
) -> int:
    """Run every (repeat, variant) of the matrix (or of `entries`) into OUT/results.jsonl; 0 if all
    succeeded, 3 if some failed."""
    entries = entries or build_matrix(options.matrix, BASELINE, options.delay_ms)
    if options.workers != 1:
        entries = [replace(e, config=e.config.with_factor("workers", options.workers)) for e in entries]
    if options.frameworks:
        entries = [e for e in entries if e.config.stack in options.frameworks]
    loop = RunLoop(out, resume=options.resume)
    loop.check_resumed(workload, load, options.matrix, options.measure, options.window.requests if options.window else None)
    seed = loop.order_seed(options.order_seed)
    plan = run_plan(entries, options.repeats, seed)
    print(
        f"spec {workload.spec.path}: dataset {workload.dataset.content_hash()}, stream {workload.stream.hash} "
        f"({len(workload.stream.paths)} requests); {describe_load(load)}; {len(entries)} variants x {options.repeats} "
        f"repeats, order seed {seed}"
    )
    probe = probe_subject(workload.dataset) if options.matrix == "faults" or any(e.config.fault for e in entries) else None
    with stop_on_signals(), ProcessGroup() as group:
        need_redis = any(e.config.variant.needs_redis for e in entries)
        ctx = open_bench(group, workload, load, options, out, seed, mongo_uri=mongo_uri, redis_url=redis_url, rules=rules,
                         need_redis=need_redis)  # fmt: skip
        with open_live_data(ctx, workload.stream.paths, probe) as live:
            planned = planned_runs(plan, ctx.bench)
            before_runs(loop, ctx, options, planned, live, warm_up=entries[0].config)
            measured = partial(run_once, ctx, on_server=on_server, live=live, probe=probe)
            per_run_s = run_seconds(load, options)
            loop.run(planned, measured, per_run_s, after=partial(put_back_after, live))
            if live is not None:
                print(live.summary(), file=sys.stderr, flush=True)
    return loop.finish()


def run_seconds(load: LoadModel, options: BenchOptions) -> float:
    """About how long one run takes, for the time-left estimate."""
    timed = sum(p.duration_s for p in load.phases) if options.measure != "instructions" else 0.0
    counted = COUNTING_S_PER_REQUEST * options.window.requests if options.window and options.measure != "time" else 0.0
    return RUN_OVERHEAD_S + timed + counted


def planned_runs(plan: list[tuple[int, int, MatrixEntry]], bench: BenchInfo) -> list[RunRecord]:
    """The record each run of `plan` fills, numbered in the order they run."""
    return [
        RunRecord(kind="run", key=e.key, role=e.role, config=e.config, repeat=repeat, order=order, sequence=index, bench=bench)
        for index, (repeat, order, e) in enumerate(plan)
    ]


def before_runs(
    loop: RunLoop,
    ctx: BenchContext,
    options: BenchOptions,
    planned: list[RunRecord],
    live: LiveData | None,
    *,
    warm_up: RunConfig | None,
) -> None:
    """What comes before the runs, unless asked not to or done already (a resumed bench): the
    generator's ceiling, and an unscored run of `warm_up` (None: none) that warms the services up
    (needed only while a run is left)."""
    if not ctx.timed:  # the ceiling and the services' warm-up serve timed runs
        return
    if options.ceiling and "ceiling:ceiling#0" not in loop.done:
        loop.append(measure_ceiling(ctx))
    if options.warmup_run and warm_up is not None and any(r.run_key not in loop.done for r in planned):
        loop.append(warm_services(ctx, warm_up, live))


@contextmanager
def open_live_data(ctx: BenchContext, stream: list[str], probe: ProbeSubject | None) -> Iterator[LiveData | None]:
    """The bench's database as the lab repairs it between runs: None when no run writes (no write in
    the stream, no write probe). A database the lab did not load is put back once first (a bench
    stopped mid-run leaves its writes there)."""
    users = written_users(stream) | ({probe.user} if probe is not None else set())
    if not users:
        yield None
        return
    with LiveData(ctx.endpoints.mongo_uri, users) as live:
        if ctx.endpoints.mongo_engine == "external":
            put_back(live)
        yield live


def put_back(live: LiveData | None, *, activity: bool = True) -> None:
    """The database as loaded again, before the next run (a ServiceError stops the bench: a run on a
    database left changed would not be comparable); `activity=False` after a run that cannot have
    changed activity documents."""
    if live is not None:
        done = live.reset(activity=activity)
        print(f"    database put back: {done.users} users, {done.deleted} live events deleted, {done.seconds:.2f} s",
              file=sys.stderr, flush=True)  # fmt: skip


def put_back_after(live: LiveData | None, record: RunRecord) -> None:
    """The database as loaded again after `record`'s run; its activity documents only if the run's
    server may have changed them (only `grouping=write` servers do)."""
    put_back(live, activity=record.config.variant.grouping == "write")


def run_once(
    ctx: BenchContext,
    record: RunRecord,
    *,
    on_server: ServerHook | None,
    live: LiveData | None,
    probe: ProbeSubject | None = None,
) -> RunRecord:
    """One run of the matrix; with the bench's probe subject, the write probe sends the run's events
    (`probe.for_run`) while its server is up, and the record gets what became of them."""
    if ctx.counter is not None:
        return attempt(record, partial(measure_counted, ctx, record, on_server, live), ctx.endpoints.uris)
    if probe is None or live is None:
        return attempt(record, partial(measure, ctx, record.config, on_server), ctx.endpoints.uris)
    subject = probe.for_run(record.sequence)
    probes: list[WriteProbe] = []

    def start_probe(server: RunningServer) -> None:
        if on_server is not None:
            on_server(server)
        probes.append(WriteProbe(server.base_url, subject, probe_duration_s(ctx.load)))
        probes[-1].start()

    try:
        record = attempt(record, partial(measure, ctx, record.config, start_probe), ctx.endpoints.uris)
    finally:
        for started in probes:
            started.stop()
    return with_writes(record, check_writes(probes[0], live)) if probes else record


def measure_counted(ctx: BenchContext, record: RunRecord, on_server: ServerHook | None, live: LiveData | None) -> Measured:
    """A run of a bench that counts instructions: the timed run first if the bench also times (then the
    database put back), and the instruction run of the same variant."""
    timed = measure(ctx, record.config, on_server) if ctx.timed else None
    if timed is not None:
        put_back_after(live, record)
    counted = count_run(ctx, record.config, on_server)
    flags = (["instructions:errors"] if counted.instructions.errors else []) + (
        ["warmup_errors"] if counted.warmup.errors else []
    )
    if timed is None:
        return Measured(phases=[], warmup=counted.warmup, server_loop=counted.server_loop, machine_speed=speed_index(),
                        flags=flags, instructions=counted.instructions)  # fmt: skip
    return replace(timed, flags=sorted({*timed.flags, *flags}), instructions=counted.instructions)


def rules_version(rules: Path) -> str:
    """The rule file as the records name it: its path and the hash a server reports in /health."""
    return f"{rules} ({load_rules(rules).version})"


def bench_info(
    workload: PreparedWorkload,
    load: LoadModel,
    options: BenchOptions,
    endpoints: Endpoints,
    order_seed: int,
    cores: dict[str, list[int]] | None,
) -> BenchInfo:
    spec = workload.spec
    return BenchInfo(
        bench_id=f"{workload.stream.hash}-{int(time.time())}",
        spec=SpecRef(path=spec.path, name=spec.name),
        seed=Seeds(dataset=spec.dataset.seed, requests=spec.requests.seed, order=order_seed),
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
        shards=endpoints.shards,
        partition=spec.partition,
        generator="distributed" if options.loadgens else "local",
        limits=options.limits.as_dict() if options.limits else None,
        measure=options.measure,
        window_requests=options.window.requests if options.window else None,
    )


def attempt(record: RunRecord, run: Callable[[], Measured], uris: list[str] | None = None) -> RunRecord:
    """`record` completed with what `run` measured, or marked failed with the error (without any
    password of `uris`, the services'); never raises for a failed run (Ctrl-C and SystemExit still propagate)."""
    started = time.time()
    try:
        m = run()
        done = msgspec.structs.replace(
            record, status="ok", phases=m.phases, warmup=m.warmup, flags=m.flags, server_loop=m.server_loop,
            machine_speed=m.machine_speed, added_delay_idle_ms=m.added_delay_idle_ms, fault=m.fault,
            instructions=m.instructions,
        )  # fmt: skip
    except Exception as error:
        message = hidden(f"{type(error).__name__}: {error}", uris or [])[:ERROR_CHARS]
        done = msgspec.structs.replace(record, status="failed", error=message, flags=["failed"])
    return msgspec.structs.replace(done, started_at=started, wall_s=round(time.time() - started, 2))


def warm_services(ctx: BenchContext, config: RunConfig, live: LiveData | None = None) -> RunRecord:
    """One unscored run of the baseline: a freshly loaded database (and cache) serves its first
    minutes slower, which would otherwise bias whichever variant runs first."""
    record = attempt(
        RunRecord(kind="warmup", key=config.key, config=config, bench=ctx.bench), lambda: measure(ctx, config), ctx.endpoints.uris
    )
    put_back(live)
    shown = ", ".join(f"{p.name} {p.throughput_rps:.0f} req/s" for p in record.phases) if record.ok else f"failed: {record.error}"
    print(f"services warm-up run ({config.key}): {shown}; not part of the results")
    return record


def measure_ceiling(ctx: BenchContext) -> RunRecord:
    """The generator's own ceiling: closed loop against Sanic's /health (no database, no cache)."""
    hello_paths = ctx.work_dir / "hello.txt"
    hello_paths.write_text("/health")
    users = max(CEILING_USERS, ctx.load.processes)
    ceiling_s = QUICK_CEILING_S if ctx.bench.quick else CEILING_S
    hello_load = replace(
        ctx.load, users=users, warmup_requests=CEILING_WARMUP, phases=(Phase("capacity", "closed", duration_s=ceiling_s),)
    )
    hello = replace(ctx, load=hello_load, paths_file=hello_paths, counted_by_server=False)
    config = BASELINE.with_factor("cache", "none")  # no cache: no Redis needed
    record = RunRecord(kind="ceiling", key="ceiling", config=config, route="/health", bench=ctx.bench)
    record = attempt(record, lambda: measure(hello, config), ctx.endpoints.uris)
    closed = record.phases[0] if record.phases else None
    shown = (
        f"{closed.throughput_rps:.0f} req/s, generator at {closed.utilisation.get('generator', 0):.0%} of a core"
        if closed
        else record.error
    )
    print(f"generator ceiling (sanic /health): {shown}")
    return record
