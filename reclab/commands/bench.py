"""`reclab bench`: run a benchmark matrix under reproducible load into DIR/results.jsonl."""

from __future__ import annotations

import math
import time
from pathlib import Path

from reclab import REPORTS
from reclab.errors import UsageError
from reclab.host.cores import core_plan
from reclab.load.distributed import LoadGens, MasterAddress
from reclab.run.faults import fault_load
from reclab.run.matrix import SUPERNODE_SHARDS, rules_for
from reclab.run.measure import ServerHook
from reclab.run.overload import run_overload
from reclab.run.runner import BenchOptions, bench_load, run_matrix
from reclab.run.target import run_target, target_url
from reclab.run.workload import prepare_workload
from servers.core.limits import Limits
from servers.core.rules import load_rules
from workloads.spec import DEFAULT_SPEC, SUPERNODE_SPEC

REPEATS, QUICK_REPEATS = 5, 3
FAULT_REPEATS, QUICK_FAULT_REPEATS = 3, 1  # the fault matrix judges each run on its own (lost = 0)
FRAMEWORKS_REPEATS = 3  # fifteen variants (seven framework/server pairs on two loops, and the A/A) in about 10 minutes
OVERLOAD_REPEATS, QUICK_OVERLOAD_REPEATS = 4, 2  # its four phases per run: within 10 minutes (4 quick)


def bench(
    *,
    spec: Path,
    rules: Path,
    matrix: str = "ofat",
    repeats: int | None = None,
    quick: bool = False,
    out: Path | None = None,
    resume: bool = False,
    delay_ms: float | None = None,
    workers: int = 1,
    frameworks: list[str] | None = None,
    users: int | None = None,
    processes: int | None = None,
    loadgens: int | None = None,
    loadgen_master: str = "",
    loadgen_wait_s: float = 300.0,
    no_ceiling: bool = False,
    no_warmup_run: bool = False,
    no_pin: bool = False,
    server_cores: int = 1,
    shards: int = 1,
    order_seed: int | None = None,
    mongo_uri: str | None = None,
    redis_url: str | None = None,
    target: str | None = None,
    on_server: ServerHook | None = None,
    limits: Limits | None = None,
    capacity_rps: float | None = None,
) -> int:
    """0 when every run succeeded, 3 when some failed (they are recorded as failed). `limits`: every
    server's deadlines and limits, when not the servers' defaults (recorded in the bench's info).
    `capacity_rps`: the overload matrix's capacity (else searched first)."""
    if repeats is not None and repeats < 1:
        raise UsageError(f"--repeats {repeats}: must be at least 1")
    for flag, count in (("--users", users), ("--processes", processes)):
        if count is not None and count < 1:
            raise UsageError(f"{flag} {count}: must be at least 1")
    if delay_ms is not None and not (math.isfinite(delay_ms) and delay_ms >= 0):
        raise UsageError(f"--delay-ms {delay_ms:g}: must be a number of milliseconds, not negative")
    if not (math.isfinite(loadgen_wait_s) and loadgen_wait_s > 0):
        raise UsageError(f"--loadgen-wait-s {loadgen_wait_s:g}: must be a positive number of seconds")
    _check_overload(matrix, capacity_rps, frameworks)
    rules = rules_for(matrix, rules)
    if matrix == "supernode":  # the talk's hot shard: its spec and 3 shards unless told otherwise
        spec = SUPERNODE_SPEC if spec == DEFAULT_SPEC else spec
        shards = SUPERNODE_SHARDS if shards == 1 and not mongo_uri else shards
    sharded = shards > 1 or len((mongo_uri or "").split()) > 1
    if sharded and (delay_ms is not None or matrix in ("network", "faults")):
        raise UsageError("the delay proxy (--delay-ms, the network and faults matrices) fronts one MongoDB server, not shards")
    if shards != 1 and mongo_uri:
        raise UsageError("--shards starts embedded MongoDB shards; to shard over your servers give their URIs in --mongo-uri")
    if target is not None:
        if (
            shards != 1
            or matrix != "ofat"
            or workers != 1
            or delay_ms is not None
            or frameworks
            or resume
            or mongo_uri
            or redis_url
            or limits
        ):
            raise UsageError("--target: the lab starts no server nor service, so --matrix, --workers, --delay-ms, "
                             "--frameworks, --resume, --mongo-uri, --redis-url and server limits do not apply")  # fmt: skip
        target = target_url(target)
    if loadgens and processes and processes != loadgens:
        raise UsageError(f"--processes {processes} --loadgens {loadgens}: the load generators are the processes; give one")
    if not no_pin:
        try:
            core_plan(True, server_cores)
        except ValueError as error:
            raise UsageError(f"--server-cores {server_cores}: {error}") from None
    out = out or REPORTS / time.strftime("bench-%Y%m%d-%H%M%S")
    options = BenchOptions(
        matrix=matrix,
        repeats=repeats or _default_repeats(matrix, quick),
        quick=quick,
        delay_ms=delay_ms,
        workers=workers,
        frameworks=tuple(frameworks) if frameworks else None,
        ceiling=not no_ceiling,
        warmup_run=not (no_warmup_run or quick),  # a quick look skips the unscored services warm-up run
        pin_cores=not no_pin,
        server_cores=server_cores,
        shards=shards,
        resume=resume,
        order_seed=order_seed,
        loadgens=LoadGens(MasterAddress.parse(loadgen_master), loadgen_wait_s) if loadgens else None,
        limits=limits,
    )
    rule_book = load_rules(rules)
    result_folder(out)
    workload = prepare_workload(spec, out / "runs", rule_book)
    load = bench_load(workload.spec.load, quick=quick, users=users, processes=loadgens or processes)
    if matrix == "faults":
        load = fault_load(load, quick)
    point_latest_at(out)
    if target is not None:
        return run_target(workload, load, options, out, target)
    if matrix == "overload":
        return run_overload(workload, load, options, out, capacity_rps=capacity_rps, mongo_uri=mongo_uri,
                            redis_url=redis_url, rules=rules, on_server=on_server)  # fmt: skip
    return run_matrix(workload, load, options, out, mongo_uri=mongo_uri, redis_url=redis_url, rules=rules, on_server=on_server)


def result_folder(out: Path) -> None:
    """Create the result folder (and its parents); a UsageError if it cannot be."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--out {out}: cannot create the result folder ({error.strerror or error})") from None


def _check_overload(matrix: str, capacity_rps: float | None, frameworks: list[str] | None) -> None:
    """--capacity-rps belongs to the overload matrix, whose servers are the baseline's (on Sanic, or the one
    framework of --frameworks)."""
    if capacity_rps is not None and matrix != "overload":
        raise UsageError(f"--capacity-rps applies to --matrix overload only (not {matrix})")
    if capacity_rps is not None and not (math.isfinite(capacity_rps) and capacity_rps > 0):
        raise UsageError(f"--capacity-rps {capacity_rps:g}: must be a positive number of requests per second")
    if matrix == "overload" and frameworks and len(frameworks) > 1:
        raise UsageError(
            f"--frameworks {' '.join(frameworks)}: the overload matrix runs the baseline with each admission control on "
            "one framework (Sanic unless --frameworks names another)"
        )


def _default_repeats(matrix: str, quick: bool) -> int:
    if matrix == "faults":
        return QUICK_FAULT_REPEATS if quick else FAULT_REPEATS
    if matrix == "overload":
        return QUICK_OVERLOAD_REPEATS if quick else OVERLOAD_REPEATS
    if matrix == "frameworks":
        return QUICK_REPEATS if quick else FRAMEWORKS_REPEATS
    return QUICK_REPEATS if quick else REPEATS


def point_latest_at(out: Path) -> None:
    """reports/latest names the newest result folder in reports/ (a bench's or a capacity search's),
    for `reclab report` and flamegraphs."""
    if out.resolve().parent != REPORTS.resolve():
        return
    latest = REPORTS / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(out.resolve().name)
