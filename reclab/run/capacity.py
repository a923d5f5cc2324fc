"""`reclab capacity`: each variant's highest sustained arrival rate whose tail latency stays within an
objective (`capacity_search`), measured step by step on the bench's machinery.

Each variant's server is started once per search and warmed up on the stream's first
`warmup_requests` entries (closed loop), so its caches hold what a sustained load puts there; every
step is then one open-loop window against it at the step's rate and the spec's arrival process
(a trace's recorded gaps paced to the step's rate, `workloads.replay_pace`), on the same stream
positions (those after the warm-up) for every step and variant, with CPU and /metrics sampled at
its edges as in a bench run. A window holds a fixed amount of work
(`step_requests` arrivals), bounded in time; after a window that broke the objective the server is
given `SETTLE_S` to finish what was left. A server that dies is replaced (and warmed up) for the
next step; its step counts as breaking the objective. The variants' searches are interleaved: round after round, each variant
still searching takes its next step, in an order drawn afresh every round from the stored seed, so
the machine's drift cannot line up with one variant. Each step is recorded (kind `capacity_step`),
then each variant's result (kind `capacity`). What a step's writes changed in the database is put
back after it (`live_reset`), so every step and variant reads the database as loaded.
"""

from __future__ import annotations

import math
import random
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec

from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.results.record import BenchInfo, CapacityResult, CapacityStep, PhaseResult, RunRecord
from reclab.run.capacity_search import Objective, Search
from reclab.run.loop import SOME_FAILED, RunLoop
from reclab.run.matrix import MatrixEntry
from reclab.run.measure import BenchContext, Measured, VariantServer, delete_namespace, measure_running, start_variant
from reclab.run.runner import BenchOptions, attempt, open_bench, open_live_data, put_back
from reclab.run.workload import PreparedWorkload
from workloads.spec import LoadModel, Phase

SETTLE_S = 1.0


@dataclass(frozen=True)
class CapacityPlan:
    """How every variant's capacity is searched."""

    objective: Objective
    start_rps: float = 25.0
    warmup_requests: int = 3000  # closed loop, once per server, before its first window
    step_requests: int = 2000  # the work of one window: arrivals at the step's rate ...
    min_window_s: float = 4.0  # ... within these bounds of its length
    max_window_s: float = 10.0
    max_steps: int = 20

    @classmethod
    def quick(cls, objective: Objective, start_rps: float = 25.0) -> CapacityPlan:
        return cls(objective, start_rps, warmup_requests=1000, step_requests=800, min_window_s=2.0, max_window_s=5.0,
                   max_steps=18)  # fmt: skip

    def window_s(self, rate: float) -> float:
        return round(min(self.max_window_s, max(self.min_window_s, self.step_requests / rate)), 3)

    def step_load(self, load: LoadModel, rate: float) -> LoadModel:
        seconds = self.window_s(rate)
        phase = Phase("step", "open", rate=rate, duration_s=seconds, quick_duration_s=seconds)
        return replace(load, warmup_requests=self.warmup_requests, phases=(phase,))  # a trace is paced to the step's rate


@dataclass
class VariantSearch:
    """One repeat of one variant's search, and its steps so far."""

    entry: MatrixEntry
    repeat: int
    search: Search
    steps: list[RunRecord]
    up: VariantServer | None = None  # its server, warmed up, between steps
    namespace: str = ""

    def stop(self, group: ProcessGroup, ctx: BenchContext) -> None:
        if self.up is not None:
            for child in [self.up.server.child, *self.up.proxies]:
                group.stop(child)
            delete_namespace(ctx.endpoints.redis_url, self.namespace)
            self.up = None


def run_capacity(
    workload: PreparedWorkload,
    load: LoadModel,
    options: BenchOptions,
    plan: CapacityPlan,
    entries: list[MatrixEntry],
    out: Path,
    *,
    mongo_uri: str | None,
    redis_url: str | None,
    rules: Path,
) -> int:
    """Every variant's capacity, `options.repeats` times, into OUT/results.jsonl; 0 if every search
    ended with a confirmed capacity, 3 if some did not."""
    loop = RunLoop(out, resumable=False)
    seed = loop.order_seed(options.order_seed)
    objective = plan.objective
    print(
        f"capacity at p99 <= {objective.p99_ms:g} ms and errors <= {objective.max_error_rate:.2%}: "
        f"{len(entries)} variants x {options.repeats} repeats, from {plan.start_rps:g}/s, windows of {plan.step_requests} "
        f"arrivals ({plan.min_window_s:g}-{plan.max_window_s:g} s), each server warmed up on {plan.warmup_requests} requests; "
        f"order seed {seed}",
        flush=True,
    )
    searches = [VariantSearch(e, r, Search(plan.start_rps, plan.max_steps), []) for r in range(options.repeats) for e in entries]
    unconfirmed = 0
    with stop_on_signals(), ProcessGroup() as group:
        ctx = open_bench(group, workload, load, options, out, seed, mongo_uri=mongo_uri, redis_url=redis_url, rules=rules,
                         need_redis=any(e.config.variant.needs_redis for e in entries))  # fmt: skip
        with open_live_data(ctx, workload.stream.paths, None) as live:
            sequence, round_number = 0, 0
            active = list(searches)
            while active:
                random.Random(f"{seed}-{round_number}").shuffle(active)
                for one in list(active):
                    following = one.search.next_step()
                    if following is None:
                        active.remove(one)
                        one.stop(group, ctx)
                        result = capacity_record(one, ctx.bench, plan)
                        unconfirmed += not (result.capacity and result.capacity.confirmed)
                        loop.append(result)
                        _show_result(result)
                        continue
                    rate, stage = following
                    step = _step(ctx, group, one, plan, rate, stage, sequence)
                    put_back(live)
                    sequence += 1
                    one.steps.append(step)
                    one.search.record(rate, stage, bool(step.step and step.step.passed))
                    loop.append(step)
                    _show_step(step)
                round_number += 1
    print(f"results: {loop.results.path} ({sequence} steps, {len(searches)} searches, {unconfirmed} unconfirmed)")
    return 0 if unconfirmed == 0 else SOME_FAILED


def _step(
    ctx: BenchContext, group: ProcessGroup, one: VariantSearch, plan: CapacityPlan, rate: float, stage: str, sequence: int
) -> RunRecord:
    rate = round(rate, 2)
    load = plan.step_load(ctx.load, rate)
    record = RunRecord(kind="capacity_step", key=one.entry.key, role=one.entry.role, config=one.entry.config,
                       repeat=one.repeat, order=one.search.steps, sequence=sequence, bench=ctx.bench)  # fmt: skip
    run_dir = ctx.work_dir / f"capacity-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(parents=True)

    def window() -> Measured:
        warmup_start = load.warmup_requests  # a warm server: straight to the window
        if one.up is None:
            one.namespace = f"reclab-{run_dir.name}"
            one.up = start_variant(ctx, one.entry.config, group, run_dir, one.namespace)
            warmup_start = 0
        return measure_running(ctx, one.up, load, run_dir, warmup_start)

    record = attempt(record, window, ctx.endpoints.uris)
    phase = record.phases[0] if record.ok else None
    broke = plan.objective.broken(phase) if phase else [f"run failed: {(record.error or '').splitlines()[0]}"]
    if phase is None:  # a fresh server and generator for the next step
        one.stop(group, ctx)
        ctx.generator.start()
    elif broke:
        time.sleep(SETTLE_S)
    step = CapacityStep(rate=rate, stage=stage, passed=not broke, broke=broke, slo_p99_ms=plan.objective.p99_ms,
                        max_error_rate=plan.objective.max_error_rate)  # fmt: skip
    return msgspec.structs.replace(record, step=step)


def capacity_record(one: VariantSearch, bench: BenchInfo, plan: CapacityPlan) -> RunRecord:
    """A variant's result from its search and steps: the capacity, the latency there (its latest
    passing window at that rate), and what broke first above it (the lowest failing rate's latest
    window): what limited it, and whether that was the server."""
    search = one.search
    capacity, high = search.capacity, search.high
    at = _latest(one.steps, capacity, passed=True)
    above = _latest(one.steps, high, passed=False)
    latency = at.phases[0].latency_us if at is not None and at.phases else None
    limited_by = _limit(above.phases[0]) if above is not None and above.phases else "unknown"
    result = CapacityResult(
        capacity_rps=capacity,
        confirmed=search.confirmed,
        above_rps=search.confirmed_fail,
        p50_ms=_ms(latency.p50 if latency else None),
        p99_ms=_ms(latency.p99 if latency else None),
        p99_9_ms=_ms(latency.p99_9 if latency else None),
        broke_above=above.step.broke if above is not None and above.step else [],
        limited_by=limited_by,
        above_utilisation=above.phases[0].utilisation if above is not None and above.phases else {},
        at_least=limited_by != "server",
        steps=search.steps,
        slo_p99_ms=plan.objective.p99_ms,
        max_error_rate=plan.objective.max_error_rate,
    )
    return RunRecord(kind="capacity", key=one.entry.key, role=one.entry.role, config=one.entry.config, repeat=one.repeat,
                     bench=bench, status="ok" if capacity is not None else "failed", capacity=result,
                     error=None if capacity is not None else "no rate tried met the objective")  # fmt: skip


def _limit(phase: PhaseResult) -> str:
    """What limited a failing window: its busiest saturated resource, or `nothing saturated` (the
    objective broke while every resource had idle time: queueing somewhere, so not the server's
    limit either)."""
    return "nothing saturated" if phase.bottleneck in ("none", "unknown") else phase.bottleneck


def _latest(steps: list[RunRecord], rate: float | None, *, passed: bool) -> RunRecord | None:
    if rate is None:
        return None
    found = [s for s in steps if s.step is not None and math.isclose(s.step.rate, round(rate, 2)) and s.step.passed == passed]
    return found[-1] if found else None


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def _show_step(record: RunRecord) -> None:
    step = record.step
    assert step is not None
    verdict = "meets the objective" if step.passed else "breaks it: " + "; ".join(step.broke)
    phase = record.phases[0] if record.phases else None
    limit = f", limited by {_limit(phase)}" if phase else ""
    line = f"  {record.key} #{record.repeat + 1} {step.stage:7s} {step.rate:8.1f}/s  {verdict}{limit}"
    print(line, file=sys.stderr, flush=True)


def _show_result(record: RunRecord) -> None:
    result = record.capacity
    assert result is not None
    print(f"{record.key} #{record.repeat + 1}: {describe(result)}", flush=True)


def describe(result: CapacityResult) -> str:
    """One line: the capacity as a reader should take it."""
    if result.capacity_rps is None:
        return "no rate tried met the objective"
    figure = f"{'at least ' if result.at_least else ''}{result.capacity_rps:.1f} req/s"
    where = f"p99 {result.p99_ms:.1f} ms there" if result.p99_ms is not None else ""
    above = f"; above it: {'; '.join(result.broke_above)}" if result.broke_above else ""
    busy = ", ".join(f"{name} {share:.0%}" for name, share in result.above_utilisation.items())
    limit = f", limited by {result.limited_by}" + (f" ({busy} busy above it)" if busy else "")
    confirmed = "" if result.confirmed else " (unconfirmed)"
    return f"{figure}{limit}{confirmed}, {where}{above}"
