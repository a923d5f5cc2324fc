"""`reclab bench --target URL`: the bench's request stream, warm-up and phases against a server the
lab did not start (someone's deployment of the recommender, another language's), on this machine.

Only the lab's side can be read: latency, throughput, errors, arrivals, the generator's and the
shared core's CPU. The server's CPU and its counters (requests served, database operations, cache
hits, Server-Timing) cannot: each phase names them in `unknown`, and leaves them empty (None) where
the record allows. The target must serve the spec's dataset (ids in the stream are the spec's); the
lab checks that the target answers before it starts, and records a failed repeat like any run.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from reclab.analysis.flags import bottleneck
from reclab.errors import UsageError
from reclab.host.cores import CpuSnapshot, CpuUse, core_plan, pin
from reclab.host.machine import speed_index
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.driver import Generator
from reclab.results.config import RunConfig
from reclab.results.record import PhaseResult, RunRecord, Warmup, excerpt
from reclab.run.loop import RunLoop
from reclab.run.measure import Measured, last_moment
from reclab.run.metrics import MetricsDelta
from reclab.run.phases import phase_result
from reclab.run.runner import BenchOptions, attempt, bench_info, describe_load, new_generator
from reclab.run.workload import PreparedWorkload
from reclab.services.start import Endpoints
from servers.core.uris import shown
from workloads.spec import LoadModel

LOOPBACK = ("127.0.0.1", "localhost", "::1")
UNKNOWN = (
    "served", "server_cpu_ms_per_request", "pace_us", "db_ops_per_request", "db_round_trips_per_request",
    "cache_hit_ratio", "server_timing_ms", "utilisation.server",
)  # fmt: skip
CONNECT_TIMEOUT_S = 3.0
EXAMPLE = "http://127.0.0.1:8000"


def target_url(url: str) -> str:
    """The target's base URL (scheme, host, port), once it is known to be on this machine and to
    accept connections; UsageError otherwise."""
    given = excerpt(shown(url))
    try:
        parts = urlsplit(url)
        port = parts.port or 80  # a port out of range or not a number raises here
    except ValueError as error:
        raise UsageError(f"--target {given}: not a URL ({error}); give the server's base URL, e.g. {EXAMPLE}") from None
    if parts.scheme != "http" or not parts.hostname:
        raise UsageError(f"--target {given}: give the server's base URL, e.g. {EXAMPLE}")
    if parts.hostname not in LOOPBACK:
        raise UsageError(f"--target {given}: the lab sends load to this machine only ({', '.join(LOOPBACK)})")
    if parts.path not in ("", "/") or parts.query:
        raise UsageError(f"--target {given}: the stream's paths start at the server's root; give no path")
    try:
        with socket.create_connection((parts.hostname, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise UsageError(f"--target {given}: nothing accepts connections there ({error})") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"http://{host}:{port}"


def measure_target(
    url: str, generator: Generator, load: LoadModel, paths_file: Path, seed: int, work_dir: Path, shared_cores: list[int]
) -> Measured:
    """One repeat against the target: the warm-up prefix, then the measured phases. Raises if the
    generator could not carry it out."""
    machine_speed = speed_index()
    run_dir = work_dir / uuid.uuid4().hex[:8]
    run_dir.mkdir(parents=True)
    pids = {"lab": [os.getpid()], **{f"generator.{i}": [pid] for i, pid in enumerate(generator.cpu_pids)}}
    run = generator.prepare(url, paths_file, load, seed, run_dir)
    windows = generator.release(run, lambda: True)
    samples: dict[float, CpuSnapshot] = {}
    for moment in sorted({m for w in windows for m in (w.start, last_moment(w))}):
        time.sleep(max(0.0, moment - time.monotonic()))
        samples[moment] = CpuSnapshot.take(pids)
    result = generator.collect(run)
    result.check()
    nothing = MetricsDelta.between({"time_ms": {}}, {"time_ms": {}})
    phases = []
    for phase in result.phases:
        cpu = CpuUse.between(samples[phase.window.start], samples[last_moment(phase.window)])
        generator.count_cpu(cpu, phase)
        measured = phase_result(phase, cpu, nothing, shared_cores=shared_cores, counted_by_server=False)
        phases.append(unknown_server(measured))
    warmup = Warmup(requests=load.warmup_requests, ok=result.warmup_ok, errors=result.warmup_errors)
    flags = sorted({f"{p.name}:{flag}" for p in phases for flag in p.flags} | ({"warmup_errors"} if warmup.errors else set()))
    return Measured(phases, warmup, None, machine_speed, flags=flags)


def unknown_server(phase: PhaseResult) -> PhaseResult:
    """A phase with what only the server could tell marked unknown."""
    used = {name: share for name, share in phase.utilisation.items() if name != "server"}
    limit = bottleneck(used)
    return msgspec.structs.replace(
        phase, served=0, server_cpu_ms_per_request=None, pace_us=None, cache_hit_ratio=None, db_ops_per_request=0.0,
        db_round_trips_per_request=0.0, utilisation=used, unknown=list(UNKNOWN),
        bottleneck="unknown" if limit == "none" else limit,
    )  # fmt: skip


def run_target(workload: PreparedWorkload, load: LoadModel, options: BenchOptions, out: Path, url: str) -> int:
    """Every repeat against the target into OUT/results.jsonl; 0 if all succeeded, 3 if some failed."""
    loop = RunLoop(out, resumable=False)
    print(
        f"target {url}: spec {workload.spec.path} (its dataset must be what the target serves), stream "
        f"{workload.stream.hash}; {describe_load(load)}; {options.repeats} repeats. The target's CPU and counters are not read."
    )
    with stop_on_signals(), ProcessGroup() as group:
        cores = core_plan(options.pin_cores, options.server_cores)
        others = cores.others if cores else None
        generator = new_generator(group, load.processes, workload.paths_file.parent / "generator", others, options.loadgens)
        if cores:
            pin([os.getpid()], cores.others)
        unread = "unknown (the target's)"
        services = Endpoints("", None, unread, unread, workload.dataset.content_hash(), 0.0)
        info = msgspec.structs.replace(
            bench_info(workload, load, options, services, 0, cores.as_dict() if cores else None), matrix="target", target=url
        )
        planned = [
            RunRecord(kind="target", key=url, config=RunConfig(), repeat=repeat, sequence=repeat, bench=info)
            for repeat in range(options.repeats)
        ]
        one_repeat = partial(measure_target, url, generator, load, workload.paths_file, workload.spec.requests.seed,
                             workload.paths_file.parent, others or [])  # fmt: skip

        def measured(record: RunRecord) -> RunRecord:
            record = attempt(record, one_repeat)
            if not record.ok:
                generator.start()  # a fresh generator for the next repeat
            return record

        loop.run(planned, measured, sum(p.duration_s for p in load.phases))
    return loop.finish("repeats")
