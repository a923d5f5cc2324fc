"""The overload matrix of `reclab bench --matrix overload`: the baseline with each admission control of
the server (`none`, `fixed`, `adaptive`), offered 0.5, 1, 2 and 4 times its capacity.

The capacity is the highest open-loop arrival rate whose p99 stays within the spec's `objective_ms`
(and errors within 0.1%), of the baseline without admission control: given (`--capacity-rps`), or
searched first on the bench's own services with `reclab capacity`'s machinery (`capacity_search`,
`capacity._step`) in short windows; its steps and result go into results.jsonl (kinds `capacity_step`
and `capacity`; a given capacity is recorded as a result of no steps). A search that finds none ends
the bench (exit 3).

Each run is then one fresh server, a warm-up as long as the search's (its caches start the phases as
the capacity was measured), and four open-loop phases `x0.5`, `x1`, `x2` and `x4` at those multiples of
the capacity, each followed by a drain longer than the server's deadline
(1 s), so that a collapsed server's backlog is over before the next phase. Each phase records its
multiple (`offered_multiple`). The outstanding-requests cap is raised, if need be, to hold every
arrival of the top phase and its drain at once: it never holds an arrival back, even from a server
that answers none. Repeats run the three servers in an order drawn afresh per repeat (`run_plan`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

import msgspec

from reclab.errors import UsageError
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.results.record import BenchInfo, CapacityResult, RunRecord
from reclab.run.capacity import CapacityPlan, VariantSearch, _show_step, _step, capacity_record, describe
from reclab.run.capacity_search import Objective, Search
from reclab.run.live_reset import LiveData
from reclab.run.loop import SOME_FAILED, RunLoop
from reclab.run.matrix import BASELINE, MatrixEntry, build_matrix
from reclab.run.measure import BenchContext, ServerHook
from reclab.run.runner import (
    BenchOptions,
    before_runs,
    open_bench,
    open_live_data,
    planned_runs,
    put_back,
    put_back_after,
    run_once,
    run_plan,
)
from reclab.run.workload import PreparedWorkload
from workloads.spec import LoadModel, Phase

MULTIPLES = (0.5, 1.0, 2.0, 4.0)  # offered load, in capacities
PHASE_S, QUICK_PHASE_S = 4.0, 2.5
DRAIN_S = 1.25  # after each phase: above the server's 1 s deadline, so its backlog is over before the next
SEARCH_START_RPS = 40.0
# The warm-up's requests in flight (a closed loop): fewer than the servers' admission limit (4 per worker,
# servers.core.limits), so that admission control refuses none of it; a closed loop whose refused
# requests come straight back spins on refusals and leaves the caches cold.
WARMUP_USERS = 3
# The warm-up's requests (the search's server, and every run's): enough for the two-level cache to hold
# what the phases read most, so the runs' caches start the phases about as the capacity was measured.
WARMUP, QUICK_WARMUP = 1500, 500
MAX_ERROR_RATE = 0.001  # the capacity's error objective, as `reclab capacity` has it by default
RUN_OVERHEAD_S = 4.0  # server start and stop, the database put back: for the estimate ...
WARMUP_RPS = 250.0  # ... and the warm-up, at about this rate
STEP_OVERHEAD_S = 2.5  # a search step besides its window and warm-up: a server started, the database put back


def search_plan(load: LoadModel, quick: bool) -> CapacityPlan:
    """How the capacity is searched: at the spec's latency objective, in windows as long as the matrix's
    phases (a rate a little above the capacity breaks the objective only once its backlog has grown: a
    shorter window would find a capacity the phases cannot hold), after a warm-up as long as every run's."""
    objective = Objective(load.objective_ms, MAX_ERROR_RATE)
    seconds = QUICK_PHASE_S if quick else PHASE_S
    warmup, steps = (QUICK_WARMUP, 8) if quick else (WARMUP, 10)
    return CapacityPlan(objective, SEARCH_START_RPS, warmup_requests=warmup, step_requests=1, min_window_s=seconds,
                        max_window_s=seconds, max_steps=steps)  # fmt: skip


def phase_name(multiple: float) -> str:
    return f"x{multiple:g}"


def overload_load(load: LoadModel, capacity_rps: float, quick: bool) -> LoadModel:
    """The spec's load (its arrival process, users) with the four overload phases at multiples of
    `capacity_rps`, each drained, and an outstanding cap that never holds an arrival back. Each server
    warms up on as many requests as the search's server did (at least the spec's warm-up), so that its
    caches start the phases as the capacity was measured, with `WARMUP_USERS` requests in flight at most."""
    seconds = QUICK_PHASE_S if quick else PHASE_S
    warmup = max(load.warmup_requests, search_plan(load, quick).warmup_requests)
    phases = tuple(
        Phase(phase_name(m), "open", rate=round(m * capacity_rps, 2), duration_s=seconds, quick_duration_s=seconds,
              drain_s=DRAIN_S)
        for m in MULTIPLES
    )  # fmt: skip
    top = max(p.rate for p in phases)
    outstanding = max(load.max_outstanding, math.ceil(top * (seconds + DRAIN_S)))
    users = max(load.processes, min(load.users, WARMUP_USERS))  # every locust process needs a user
    return replace(load, phases=phases, max_outstanding=outstanding, warmup_requests=warmup, users=users)


def with_multiples(record: RunRecord) -> RunRecord:
    """The run's phases, each with the multiple of the capacity it offered."""
    multiples = {phase_name(m): m for m in MULTIPLES}
    phases = [msgspec.structs.replace(p, offered_multiple=multiples.get(p.name)) for p in record.phases]
    return msgspec.structs.replace(record, phases=phases)


def overload_entries(options: BenchOptions) -> list[MatrixEntry]:
    """The matrix's three servers (the baseline on Sanic, or on the one framework of `--frameworks`), each
    with the bench's worker processes."""
    baseline = BASELINE.with_factor("framework", options.frameworks[0]) if options.frameworks else BASELINE
    entries = build_matrix("overload", baseline, options.delay_ms)
    if options.workers != 1:
        entries = [replace(e, config=e.config.with_factor("workers", options.workers)) for e in entries]
    return entries


def run_seconds(load: LoadModel) -> float:
    """One run of `load`, start to end, about."""
    return RUN_OVERHEAD_S + load.warmup_requests / WARMUP_RPS + sum(p.duration_s + p.drain_s for p in load.phases)


def estimate_s(runs: int, load: LoadModel, search: CapacityPlan | None) -> float:
    """The matrix's time once the services are up: the search at its longest, then every run of `load`."""
    searching = 0.0
    if search is not None:
        step_s = search.warmup_requests / WARMUP_RPS + search.max_window_s + STEP_OVERHEAD_S
        searching = search.max_steps * step_s
    return searching + runs * run_seconds(load)


def plan_text(
    options: BenchOptions, entries: list[MatrixEntry], load: LoadModel, capacity_rps: float | None, search: CapacityPlan | None
) -> str:
    """The matrix in a line, with its estimated time (`load`: the spec's, as the bench runs it)."""
    if search is not None:
        where = (f"capacity searched first on {entries[0].key} (at most {search.max_steps} windows of "
                 f"{search.min_window_s:g}-{search.max_window_s:g} s)")  # fmt: skip
    else:
        where = f"capacity {capacity_rps:g} req/s as given"
    runs = len(entries) * options.repeats + (1 if options.warmup_run and search is None else 0)
    shape = overload_load(load, capacity_rps or SEARCH_START_RPS, options.quick)  # the phases' lengths, whatever the rates
    return (
        f"overload matrix: {where}; then {len(entries)} admission modes x {options.repeats} repeats, each run a warm-up of "
        f"{shape.warmup_requests} requests and {', '.join(phase_name(m) for m in MULTIPLES)} of the capacity "
        f"({shape.phases[0].duration_s:g} s each, {DRAIN_S:g} s drain after); about "
        f"{estimate_s(runs, shape, search) / 60:.1f} minutes once the services are up"
    )


def run_overload(
    workload: PreparedWorkload,
    load: LoadModel,
    options: BenchOptions,
    out: Path,
    *,
    capacity_rps: float | None,
    mongo_uri: str | None,
    redis_url: str | None,
    rules: Path,
    on_server: ServerHook | None = None,
) -> int:
    """The overload matrix into OUT/results.jsonl: 0 if every run succeeded, 3 if some failed or the
    capacity search found no capacity."""
    entries = overload_entries(options)
    loop = RunLoop(out, resume=options.resume)
    if loop.previous and capacity_rps is None:
        capacity_rps = recorded_capacity(loop.previous)
    final = overload_load(load, capacity_rps, options.quick) if capacity_rps is not None else None
    loop.check_resumed(workload, final or load, options.matrix)
    search = search_plan(load, options.quick) if capacity_rps is None else None
    seed = loop.order_seed(options.order_seed)
    print(plan_text(options, entries, load, capacity_rps, search), flush=True)
    with stop_on_signals(), ProcessGroup() as group:
        ctx = open_bench(group, workload, final or load, options, out, seed, mongo_uri=mongo_uri, redis_url=redis_url,
                         rules=rules, need_redis=any(e.config.variant.needs_redis for e in entries))  # fmt: skip
        with open_live_data(ctx, workload.stream.paths, None) as live:
            if search is not None:
                found = search_capacity(ctx, group, live, entries[0], search)
                if found.search.capacity is None:
                    _record_search(loop, found, ctx.bench, search)
                    print("reclab: the capacity search found no rate meeting the objective: no overload matrix without "
                          "a capacity (give one with --capacity-rps)", file=sys.stderr, flush=True)  # fmt: skip
                    return SOME_FAILED
                final = overload_load(load, found.search.capacity, options.quick)
                ctx = with_load(ctx, final)
                _record_search(loop, found, ctx.bench, search)
            elif not loop.previous and capacity_rps is not None:
                loop.append(given_capacity(entries[0], ctx.bench, capacity_rps, load.objective_ms))
            planned = planned_runs(run_plan(entries, options.repeats, seed), ctx.bench)
            warm_up = entries[0].config if search is None else None  # a search has warmed the services up
            before_runs(loop, ctx, options, planned, live, warm_up=warm_up)
            once = partial(run_once, ctx, on_server=on_server, live=live)
            loop.run(planned, lambda record: with_multiples(once(record)), run_seconds(ctx.load), partial(put_back_after, live))
    return loop.finish()


def with_load(ctx: BenchContext, load: LoadModel) -> BenchContext:
    """The bench's context, and the bench every record names, with `load`."""
    return replace(ctx, load=load, bench=msgspec.structs.replace(ctx.bench, load=load))


def recorded_capacity(previous: list[RunRecord]) -> float | None:
    """The capacity a bench being resumed found (or was given); a search that found none cannot be resumed."""
    found = [r.capacity for r in previous if r.kind == "capacity" and r.capacity is not None]
    if found and found[-1].capacity_rps is None:
        raise UsageError("--resume: that bench's capacity search found no capacity; start afresh (another --out), or give "
                         "one with --capacity-rps")  # fmt: skip
    return found[-1].capacity_rps if found else None


def search_capacity(
    ctx: BenchContext, group: ProcessGroup, live: LiveData | None, entry: MatrixEntry, plan: CapacityPlan
) -> VariantSearch:
    """One search of `entry`'s capacity (see `reclab.run.capacity`). Every step has a fresh server with the
    runs' warm-up: a server kept from step to step has served thousands of requests by the last steps, its
    caches far warmer than a run's when its phases start, and its capacity is not theirs (measured: 281
    against 147 req/s)."""
    one = VariantSearch(entry, 0, Search(plan.start_rps, plan.max_steps), [])
    try:
        while (following := one.search.next_step()) is not None:
            rate, stage = following
            step = _step(ctx, group, one, plan, rate, stage, len(one.steps))
            one.stop(group, ctx)
            put_back(live)
            one.steps.append(step)
            one.search.record(rate, stage, bool(step.step and step.step.passed))
            _show_step(step)
    finally:
        one.stop(group, ctx)
    return one


def _record_search(loop: RunLoop, one: VariantSearch, bench: BenchInfo, plan: CapacityPlan) -> None:
    """The search's steps and result, under the bench that ran them (with its final load)."""
    for step in one.steps:
        loop.append(msgspec.structs.replace(step, bench=bench))
    result = capacity_record(one, bench, plan)
    loop.append(result)
    assert result.capacity is not None
    print(f"capacity of {one.entry.key}: {describe(result.capacity)}", flush=True)


def given_capacity(entry: MatrixEntry, bench: BenchInfo, capacity_rps: float, objective_ms: float) -> RunRecord:
    """A capacity given with --capacity-rps, recorded as a result of no steps."""
    result = CapacityResult(capacity_rps=capacity_rps, confirmed=False, above_rps=None, steps=0, slo_p99_ms=objective_ms,
                            max_error_rate=MAX_ERROR_RATE)  # fmt: skip
    return RunRecord(kind="capacity", key=entry.key, role=entry.role, config=entry.config, bench=bench, capacity=result)
