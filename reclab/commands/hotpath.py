"""`reclab hotpath`: a warmed-up server variant's CPU per request on the request stream, against the
same server's `/health` (see `reclab.run.hotpath`), per framework, under locust or wrk. Prints a
table and writes OUT/hotpath.json (asv reads it)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from reclab.host.cores import core_plan, pin
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.driver import Generator
from reclab.load.wrk import wrk_binary
from reclab.run.hotpath import HotPath, HotPathPlan, LocustWindows, WrkWindows, measure_hotpath
from reclab.run.server import start_server
from reclab.run.workload import prepare_workload
from reclab.services.start import start_services
from servers.core.variant import Variant

USERS = 16  # closed-loop users: the load wrk gives with 16 connections


def hotpath(
    *,
    frameworks: list[str],
    loop: str = "uvloop",
    spec: Path,
    out: Path,
    rounds: int = 5,
    window_s: float = 4.0,
    warmup_s: float = 10.0,
    variant: Variant,
    mongo_uri: str | None = None,
    redis_url: str | None = None,
    rules: Path,
    pin_cores: bool = True,
    generator: str = "locust",
) -> int:
    if generator == "wrk":
        wrk_binary()  # a clear error before anything starts
    work_dir = out / "hotpath"
    workload = prepare_workload(spec, work_dir)
    health_file = work_dir / "health.txt"
    health_file.write_text("/health")
    load = replace(workload.spec.load, users=USERS)
    plan = HotPathPlan(load, workload.paths_file, health_file, workload.spec.requests.seed, work_dir, rounds, window_s, warmup_s)
    cores = core_plan(pin_cores)
    results: list[HotPath] = []
    with stop_on_signals(), ProcessGroup() as group:
        logs = out / "logs"
        endpoints = start_services(group, spec, logs, mongo_uri=mongo_uri, redis_url=redis_url, need_redis=variant.needs_redis)
        others = cores.others if cores else None
        windows: LocustWindows | WrkWindows
        if generator == "wrk":
            windows = WrkWindows(group, others)
        else:
            windows = LocustWindows(Generator(group, load.processes, work_dir / "generator", others), plan, others)
        if cores is not None:
            pin([*endpoints.pids.values(), os.getpid()], cores.others)
        for framework in frameworks:
            server = start_server(group, framework, variant, endpoints, work_dir, rules=rules, loop=loop)
            results.append(measure_hotpath(server, windows, plan, cores))
            group.stop(server.child)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hotpath.json").write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    who = f"{USERS} locust users" if generator == "locust" else f"wrk, {USERS} connections"
    print(f"server CPU per request, warmed up, closed loop ({who}), median of {rounds} windows of {window_s:g} s:")
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
