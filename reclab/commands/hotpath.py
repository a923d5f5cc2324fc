"""`reclab hotpath`: a warmed-up server variant's CPU per request on the request stream, against the
same server's `/health` (see `reclab.run.hotpath`), per framework. Prints a table and writes
OUT/hotpath.json (asv reads it)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from reclab.host.cores import core_plan, pin
from reclab.host.processes import ProcessGroup, stop_on_signals
from reclab.load.driver import Generator
from reclab.run.hotpath import HotPath, HotPathPlan, measure_hotpath
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
) -> int:
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
        generator = Generator(group, load.processes, work_dir / "generator", cores.others if cores else None)
        if cores is not None:
            pin([*endpoints.pids.values(), os.getpid()], cores.others)
        for framework in frameworks:
            server = start_server(group, framework, variant, endpoints, work_dir, rules=rules, loop=loop)
            results.append(measure_hotpath(server, generator, plan, cores))
            group.stop(server.child)
    out.mkdir(parents=True, exist_ok=True)
    (out / "hotpath.json").write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    print(f"server CPU per request, warmed up, closed loop with {USERS} users, median of {rounds} windows of {window_s:g} s:")
    for result in results:
        ratio = result.ratio()
        shown = ratio.text(1) if ratio else "–"
        print(
            f"  {result.framework}+{loop} {result.variant}: stream {HotPath.median(result.stream):.3f} ms, "
            f"/health {HotPath.median(result.health):.3f} ms, ratio {shown}x (limited by {result.limited_by()})"
        )
    print(f"  {out / 'hotpath.json'}")
    return 0
