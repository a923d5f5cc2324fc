"""`reclab hotpath`: a warmed-up server variant's CPU per request on the request stream, against the
same server's `/health` (see `reclab.run.hotpath`), per framework, under locust or wrk. Prints a
table and writes OUT/hotpath.json (asv reads it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import msgspec

from reclab import REPORTS
from reclab.host.cores import core_plan, pin
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.driver import Generator
from reclab.load.wrk import wrk_binary
from reclab.run.hotpath import HotPath, HotPathPlan, LocustWindows, WrkWindows, measure_hotpath
from reclab.run.options import Connections, Switches
from reclab.run.server import start_server
from reclab.run.workload import prepare_workload
from workloads.spec import DEFAULT_SPEC

USERS = 16  # closed-loop users: the load wrk gives with 16 connections


@dataclass(frozen=True, kw_only=True)
class HotpathArgs:
    """`reclab hotpath`'s flags as given."""

    frameworks: tuple[str, ...] = ("sanic",)  # stack names
    switches: Switches
    connections: Connections = field(default_factory=Connections)
    spec: Path = DEFAULT_SPEC
    out: Path = REPORTS / "latest"
    rounds: int = 5  # pairs of windows (stream, /health)
    window_s: float = 4.0
    warmup_s: float = 10.0  # closed-loop warm-up on the stream first
    pin_cores: bool = True
    generator: str = "locust"  # or wrk, replaying the same stream


def hotpath(args: HotpathArgs) -> int:
    if args.generator == "wrk":
        wrk_binary()  # a clear error before anything starts
    out, loop, variant = args.out, args.switches.loop, args.switches.variant
    work_dir = out / "hotpath"
    workload = prepare_workload(args.spec, work_dir)
    health_file = work_dir / "health.txt"
    health_file.write_text("/health")
    load = replace(workload.spec.load, users=USERS)
    plan = HotPathPlan(load, workload.paths_file, health_file, workload.spec.requests.seed, work_dir, args.rounds,
                       args.window_s, args.warmup_s)  # fmt: skip
    cores = core_plan(args.pin_cores)
    results: list[HotPath] = []
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = args.connections.start_services(group, args.spec, out / "logs", need_redis=variant.needs_redis)
        others = cores.others if cores else None
        windows: LocustWindows | WrkWindows
        if args.generator == "wrk":
            windows = WrkWindows(group, others)
        else:
            windows = LocustWindows(Generator(group, load.processes, work_dir / "generator", others), plan, others)
        if cores is not None:
            pin([*endpoints.pids.values(), os.getpid()], cores.others)
        for framework in args.frameworks:
            server = start_server(group, framework, variant, endpoints, work_dir, rules=args.connections.rules, loop=loop)
            results.append(measure_hotpath(server, windows, plan, cores))
            group.stop(server.child)
    out.mkdir(parents=True, exist_ok=True)
    written = msgspec.json.format(msgspec.json.encode([r.as_dict() for r in results]), indent=2)
    (out / "hotpath.json").write_bytes(written + b"\n")
    who = f"{USERS} locust users" if args.generator == "locust" else f"wrk, {USERS} connections"
    print(f"server CPU per request, warmed up, closed loop ({who}), median of {args.rounds} windows of {args.window_s:g} s:")
    for result in results:
        ratio, paced = result.ratio(), result.paced_ratio()
        print(
            f"  {result.framework}+{loop} {result.variant}: stream {HotPath.median(result.stream):.3f} ms, "
            f"/health {HotPath.median(result.health):.3f} ms, ratio {ratio.text(1) if ratio else '–'}x "
            f"(at one pace {paced.text(1) if paced else '–'}x; limited by {result.limited_by()})"
        )
        if failed := sum(w.errors for w in result.stream + result.health):
            print(f"    {failed} requests failed in its windows: see {out / 'hotpath.json'} and the generator's records")
    print(f"  {out / 'hotpath.json'}")
    return 0
