"""One measured run of `reclab bench`: a server variant up with its caches empty, the warm-up prefix
of the stream, the measured phases with CPU and /metrics sampled at their edges, everything the run
started stopped again. A phase whose entries included writes gets its reads and writes apart.

The bench's locust processes (the generator) wait for the run; the server gets a fresh Redis key
namespace, so that every run's caches start empty whoever ran before, and the namespace is deleted
afterwards (never a flush: the Redis may be someone's). A run that fails restarts the generator, so
that no request of it reaches the next run.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import redis

from reclab.host.cores import CorePlan, CpuSnapshot, CpuUse, pin, pin_server
from reclab.host.machine import speed_index
from reclab.host.processes import Child, Forker, ProcessGroup
from reclab.load.driver import Generator, KindLoad, PhaseLoad
from reclab.results.config import RunConfig
from reclab.results.faults import FAULT_END_S, FAULT_START_S
from reclab.results.record import BenchInfo, FaultRecord, InstructionCount, PhaseResult, Traffic, Warmup
from reclab.run.callgrind import InstructionCounter, InstructionWindow
from reclab.run.fault_outcome import fault_outcome
from reclab.run.faults import FaultThread, injection
from reclab.run.metrics import MetricsDelta
from reclab.run.phases import phase_result
from reclab.run.server import READY_TIMEOUT_S, RunningServer, start_server
from reclab.services.engine_counters import EngineCounters
from reclab.services.network import DelayProbe, ProxyControl, delayed
from reclab.services.start import Endpoints
from servers.core.limits import Limits
from workloads.loadplan import PhaseWindow, percentiles_us
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
    generator: Generator
    forker: Forker | None = None  # forks each run's server from a pre-imported parent
    cores: CorePlan | None = None
    counted_by_server: bool = True  # False for a route the server's counters leave out (the ceiling's)
    engine: EngineCounters | None = None  # the database's own counters, where its engine keeps them
    limits: Limits | None = None  # the servers' deadlines and limits (None: their defaults)
    counter: InstructionCounter | None = None  # a bench that counts instructions: its zygote under valgrind
    window: InstructionWindow | None = None  # and the slice of the stream they are counted over
    timed: bool = True  # False: the runs count instructions only, with no timed phases


@dataclass
class Measured:
    """What `measure` returns for the record of a successful run."""

    phases: list[PhaseResult]
    warmup: Warmup
    server_loop: str | None
    machine_speed: float
    added_delay_idle_ms: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    fault: FaultRecord | None = None
    instructions: InstructionCount | None = None


ServerHook = Callable[[RunningServer], None]
UNCACHED_WARMUP = 30  # warm-up requests of a variant without a cache (see warmup_start_of)


@dataclass
class Sample:
    """CPU time of every process and core, and the server's counters, at one moment."""

    cpu: CpuSnapshot
    metrics: dict
    engine: dict[str, float] | None = None  # the database's own counters (EngineCounters), where it keeps them


def measure(ctx: BenchContext, config: RunConfig, on_server: ServerHook | None = None) -> Measured:
    """One run: server up, warm-up, measured phases, server down. Raises if the run fails.

    Everything the run starts (delay proxies, server, locust) belongs to the run's own process
    group, so it is stopped when the run ends, whether it succeeded, failed or was interrupted."""
    machine_speed = speed_index()
    run_dir = ctx.work_dir / uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True)
    namespace = f"reclab-{run_dir.name}"
    try:
        with ProcessGroup() as group:
            return _measure(ctx, config, group, run_dir, namespace, machine_speed, on_server)
    except Exception:
        ctx.generator.start()
        raise
    finally:
        delete_namespace(ctx.endpoints.redis_url, namespace)


@dataclass
class VariantServer:
    """A variant's server up and pinned, with the delay proxies in front of its services, if any."""

    server: RunningServer
    loop: str | None
    endpoints: Endpoints  # as the server reaches them (through the proxies when delayed)
    proxies: list[Child] = field(default_factory=list)
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)  # the delay probe's
    controls: dict[str, ProxyControl] = field(default_factory=dict)
    idle_added_ms: dict[str, float] = field(default_factory=dict)


def start_variant(
    ctx: BenchContext,
    config: RunConfig,
    group: ProcessGroup,
    run_dir: Path,
    namespace: str,
    on_server: ServerHook | None = None,
    *,
    forker: Forker | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
    pace: bool = True,
) -> VariantServer:
    """A fresh server of the variant (caches empty, in its own Redis namespace), through the delay
    proxy when the variant has a delay; pinned; raises if it runs on another loop than asked for.
    Forked by `forker` if given (the zygote under valgrind of a bench that counts instructions), else
    by the bench's; `pace=False`: without the server's reference work (servers.core.pace)."""
    endpoints, proxies, idle_added, targets, controls = ctx.endpoints, [], {}, {}, {}
    if config.delay_ms is not None:
        net = delayed(group, ctx.endpoints, config.delay_ms, run_dir)
        endpoints, proxies, idle_added, controls = net.endpoints, net.proxies, net.added_ms, net.controls
        targets = {} if config.fault else net.targets  # no delay probe through a fault
    server = start_server(
        group, config.stack, config.variant, endpoints, run_dir, rules=ctx.rules, loop=config.loop,
        cache_namespace=namespace, forker=forker or ctx.forker, workers=config.workers, rules_as_code=config.rules == "code",
        limits=ctx.limits, admission=config.admission, ready_timeout_s=ready_timeout_s, pace=pace,
    )  # fmt: skip
    if on_server is not None:
        on_server(server)
    with exit_named(server):
        server_loop = server.get_json("/health").get("loop")
    if server_loop != config.loop:
        raise RuntimeError(f"{config.stack} runs on {server_loop}, not on the {config.loop} asked for")
    if ctx.cores:
        pin_server(server.child.pid, ctx.cores.server)
        pin([c.pid for c in proxies], ctx.cores.others)
    return VariantServer(server, server_loop, endpoints, proxies, targets, controls, idle_added)


def measure_running(
    ctx: BenchContext, up: VariantServer, load: LoadModel, run_dir: Path, warmup_start: int, config: RunConfig | None = None,
    machine_speed: float | None = None,
) -> Measured:  # fmt: skip
    """`load` against a server already up: its warm-up from `warmup_start`, then its phases, with CPU
    and /metrics sampled at their edges; with the run's `config`, its fault injected and the delay
    probed through its first window. Raises if the run fails."""
    machine_speed = speed_index() if machine_speed is None else machine_speed
    server = up.server
    pids = _process_groups(server, up.endpoints, ctx.generator.cpu_pids, up.proxies)
    run = ctx.generator.prepare(server.base_url, ctx.paths_file, load, ctx.seed, run_dir, warmup_start)
    windows = ctx.generator.release(run, server.child.alive)
    fault = _start_fault(config, server, ctx.endpoints, up.controls, windows[0]) if config is not None else None
    try:
        samples, added_during = _sample_phases(server, pids, windows, up.targets if config is not None else {}, ctx.engine)
    finally:
        if fault is not None:
            fault.finish()
    result = ctx.generator.collect(run)
    if not server.child.alive():
        raise RuntimeError(f"server exited before the end of the run (code {server.child.exit_code()})")
    result.check()
    phases = [
        _phase(phase, samples, ctx, added_during if phase.window is windows[0] and phase.window.mode == "open" else None)
        for phase in result.phases
    ]  # fmt: skip
    warmup = Warmup(requests=max(0, load.warmup_requests - warmup_start), ok=result.warmup_ok, errors=result.warmup_errors)
    flags = sorted({f"{p.name}:{flag}" for p in phases for flag in p.flags} | ({"warmup_errors"} if warmup.errors else set()))
    outcome = None
    if fault is not None and config is not None and config.fault is not None:
        if fault.began is None or fault.ended is None:
            raise RuntimeError(f"fault {config.fault} was not injected inside the window")
        start = windows[0].start
        outcome = fault_outcome(config.fault, result.phases[0].trace, fault.began - start, fault.ended - start)
        flags = sorted({*flags, *(["fault:lost"] if outcome.lost else [])})
    return Measured(phases, warmup, up.loop, machine_speed, up.idle_added_ms, flags, outcome)


def _measure(
    ctx: BenchContext,
    config: RunConfig,
    group: ProcessGroup,
    run_dir: Path,
    namespace: str,
    machine_speed: float,
    on_server: ServerHook | None,
) -> Measured:
    up = start_variant(ctx, config, group, run_dir, namespace, on_server)
    with exit_named(up.server):
        return measure_running(ctx, up, ctx.load, run_dir, warmup_start_of(config, ctx.load), config, machine_speed)


@contextlib.contextmanager
def exit_named(server: RunningServer) -> Iterator[None]:
    """An error while the server had already exited says so first: a refused connection or a missing
    answer is what a dead server looks like from outside, and its exit is the cause to record."""
    try:
        yield
    except Exception as error:
        if server.child.alive() or "server exited" in str(error):
            raise
        raise RuntimeError(f"server exited (code {server.child.exit_code()}): {type(error).__name__}: {error}") from error


def _start_fault(
    config: RunConfig, server: RunningServer, endpoints: Endpoints, controls: dict[str, ProxyControl], window: PhaseWindow
) -> FaultThread | None:
    """The run's fault, if it has one, set to begin and end inside its first (open-loop) window."""
    if config.fault is None:
        return None
    if window.mode != "open":
        raise ValueError(f"fault {config.fault}: the first phase must be open loop")
    inject = injection(config.fault, server.child.pid, endpoints.pids, controls, config.stack)
    fault = FaultThread(inject, window.start + FAULT_START_S, window.start + FAULT_END_S)
    fault.start()
    return fault


def warmup_start_of(config: RunConfig, load: LoadModel) -> int:
    """Where a run's warm-up starts in the stream: at the beginning, so that every cache holds what
    the same prefix put there; without a cache there is no such state, and the last few requests of
    the prefix warm the connections (the measured phases start at the same position either way)."""
    if config.cache == "none":
        return max(0, load.warmup_requests - UNCACHED_WARMUP)
    return 0


def _process_groups(
    server: RunningServer, endpoints: Endpoints, generators: list[int], proxies: list[Child]
) -> dict[str, list[int]]:
    """The processes whose CPU time is accounted, by resource (several generators and proxies are
    kept apart: each can use one core)."""
    pids = {"server": server.process_ids(), "lab": [os.getpid()]}
    pids |= {name.replace("mongo", "database", 1): [pid] for name, pid in endpoints.pids.items() if name.startswith("mongo")}
    if "valkey" in endpoints.pids:
        pids["cache"] = [endpoints.pids["valkey"]]
    pids |= {f"generator.{i}": [pid] for i, pid in enumerate(generators)}
    pids |= {f"proxy.{child.name.removeprefix('delay-')}": [child.pid] for child in proxies}
    return pids


def _sample_phases(
    server: RunningServer,
    pids: dict[str, list[int]],
    windows: list[PhaseWindow],
    targets: dict[str, tuple[str, str]],
    engine: EngineCounters | None = None,
) -> tuple[dict[float, Sample], dict[str, float]]:
    """A sample at every edge of every phase; the delay probe runs through the open phase."""
    edges = sorted({moment for w in windows for moment in (w.start, last_moment(w))})
    samples: dict[float, Sample] = {}
    probe: DelayProbe | None = None
    added: dict[str, float] = {}
    for moment in edges:
        if not _sleep_until(moment, server.child.alive):
            raise RuntimeError(f"server exited during the measurement (code {server.child.exit_code()})")
        samples[moment] = Sample(CpuSnapshot.take(pids), server.get_json("/metrics"), engine.read() if engine else None)
        first = windows[0]  # the delay probe runs through the first phase
        if targets and moment == first.start:
            probe = DelayProbe(targets)
            probe.start()
        elif probe is not None and moment == last_moment(first):
            added = probe.stop()
            probe = None
    return samples, added


def _phase(load: PhaseLoad, samples: dict[float, Sample], ctx: BenchContext, added: dict[str, float] | None) -> PhaseResult:
    window = load.window
    first, last = samples[window.start], samples[last_moment(window)]
    cpu = CpuUse.between(first.cpu, last.cpu)
    ctx.generator.count_cpu(cpu, load)
    phase = phase_result(
        load,
        cpu,
        MetricsDelta.between(first.metrics, last.metrics),
        shared_cores=ctx.cores.others if ctx.cores else [],
        counted_by_server=ctx.counted_by_server,
        added_delay_ms=added,
        examined=_examined(first.engine, last.engine),
    )
    return with_traffic(phase, load)


def with_traffic(phase: PhaseResult, load: PhaseLoad) -> PhaseResult:
    """`phase` with its reads and writes apart, if the generator sent writes in it."""
    if load.reads is None or load.writes is None:
        return phase
    seconds = load.window.seconds
    return msgspec.structs.replace(phase, reads=traffic(load.reads, seconds), writes=traffic(load.writes, seconds))


def traffic(kind: KindLoad, seconds: float) -> Traffic:
    """One kind of entry of a phase as the record keeps it (percentiles in ms from its histogram)."""
    latency = percentiles_us(kind.histogram)

    def ms(name: str) -> float | None:
        return round(latency[name] / 1000, 3) if name in latency else None

    return Traffic(
        requests=kind.requests,
        ok=kind.ok,
        rps=round(kind.ok / seconds, 3) if seconds else 0.0,
        p50_ms=ms("p50"),
        p90_ms=ms("p90"),
        p99_ms=ms("p99"),
        errors=dict(sorted(kind.errors.items())),
        hdr=kind.histogram.encode().decode("ascii"),
    )


def _examined(before: dict[str, float] | None, after: dict[str, float] | None) -> float | None:
    """Documents the database examined between two samples (None where its engine does not say)."""
    return None if before is None or after is None else after["examined"] - before["examined"]


def last_moment(window: PhaseWindow) -> float:
    """Where a phase's accounting ends: an open phase's requests are given until it settles; a closed
    phase counts what completes inside its window."""
    return window.settled if window.mode == "open" else window.end


def _sleep_until(deadline: float, alive: Callable[[], bool]) -> bool:
    while time.monotonic() < deadline:
        if not alive():
            return False
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return True


def delete_namespace(redis_url: str | None, namespace: str) -> None:
    """Remove the run's own keys (and only those) from Redis."""
    if not redis_url:
        return
    with contextlib.suppress(redis.RedisError, OSError):
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{namespace}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.unlink(*batch)
                    batch.clear()
            if batch:
                client.unlink(*batch)
        finally:
            client.close()
