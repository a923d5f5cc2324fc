"""`reclab bench`: run a benchmark matrix under reproducible load into DIR/results.jsonl."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from reclab import REPORTS
from reclab.errors import UsageError
from reclab.host.cores import core_plan
from reclab.load.distributed import DEFAULT_PORT, LoadGens, MasterAddress
from reclab.run.callgrind import InstructionWindow, valgrind_version
from reclab.run.faults import fault_load
from reclab.run.folders import point_latest_at, result_folder
from reclab.run.matrix import SUPERNODE_SHARDS, rules_for
from reclab.run.measure import ServerHook
from reclab.run.options import Connections
from reclab.run.overload import run_overload
from reclab.run.runner import MEASURES, BenchOptions, bench_load, run_matrix
from reclab.run.target import run_target, target_url
from reclab.run.workload import prepare_workload
from servers.core.limits import Limits
from servers.core.rules import load_rules
from workloads.spec import DEFAULT_SPEC, SUPERNODE_SPEC

REPEATS, QUICK_REPEATS = 5, 3
FAULT_REPEATS, QUICK_FAULT_REPEATS = 3, 1  # the fault matrix judges each run on its own (lost = 0)
FRAMEWORKS_REPEATS = 3  # fifteen variants (seven framework/server pairs on two loops, and the A/A) in about 10 minutes
OVERLOAD_REPEATS, QUICK_OVERLOAD_REPEATS = 4, 2  # its four phases per run: within 10 minutes (4 quick)
COUNTED_REPEATS, QUICK_COUNTED_REPEATS = 3, 2  # instruction counts agree to a fraction of a percent run to run
WINDOW_REQUESTS, QUICK_WINDOW_REQUESTS = 60, 20  # the instruction window: ofat within 15 minutes (quick: 5)
UNCOUNTED_MATRICES = ("faults", "overload")  # they judge behaviour over time, which instructions do not see


@dataclass(frozen=True, kw_only=True)
class BenchArgs:
    """`reclab bench`'s flags as given (the command resolves them into the runner's `BenchOptions`)."""

    spec: Path = DEFAULT_SPEC
    connections: Connections = field(default_factory=Connections)
    matrix: str = "ofat"
    repeats: int | None = None  # None: the matrix's default
    quick: bool = False
    out: Path | None = None  # None: reports/bench-<time>
    resume: bool = False
    delay_ms: float | None = None
    workers: int = 1
    frameworks: tuple[str, ...] | None = None
    users: int | None = None
    processes: int | None = None
    loadgens: int | None = None
    loadgen_master: str = f"127.0.0.1:{DEFAULT_PORT}"
    loadgen_wait_s: float = 300.0
    no_ceiling: bool = False
    no_warmup_run: bool = False
    no_pin: bool = False
    server_cores: int = 1
    shards: int = 1
    order_seed: int | None = None
    target: str | None = None
    capacity_rps: float | None = None  # the overload matrix's capacity (None: searched first)
    limits: Limits | None = None  # every server's deadlines and limits, recorded (None: the servers' defaults); no flag
    measure: str = "time"  # time | instructions | both
    window_requests: int | None = None  # counting instructions: the window's requests (None: the default)


def bench(args: BenchArgs, *, on_server: ServerHook | None = None) -> int:
    """0 when every run succeeded, 3 when some failed (they are recorded as failed). `on_server`: called
    with each run's server once it is up."""
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: must be at least 1")
    for flag, count in (("--users", args.users), ("--processes", args.processes)):
        if count is not None and count < 1:
            raise UsageError(f"{flag} {count}: must be at least 1")
    if args.delay_ms is not None and not (math.isfinite(args.delay_ms) and args.delay_ms >= 0):
        raise UsageError(f"--delay-ms {args.delay_ms:g}: must be a number of milliseconds, not negative")
    if not (math.isfinite(args.loadgen_wait_s) and args.loadgen_wait_s > 0):
        raise UsageError(f"--loadgen-wait-s {args.loadgen_wait_s:g}: must be a positive number of seconds")
    _check_overload(args.matrix, args.capacity_rps, args.frameworks)
    window = _check_counting(args)
    mongo_uri, redis_url = args.connections.mongo_uri, args.connections.redis_url
    rules = rules_for(args.matrix, args.connections.rules)
    spec, shards = args.spec, args.shards
    if args.matrix == "supernode":  # the talk's hot shard: its spec and 3 shards unless told otherwise
        spec = SUPERNODE_SPEC if spec == DEFAULT_SPEC else spec
        shards = SUPERNODE_SHARDS if shards == 1 and not mongo_uri else shards
    sharded = shards > 1 or len((mongo_uri or "").split()) > 1
    if sharded and (args.delay_ms is not None or args.matrix in ("network", "faults")):
        raise UsageError("the delay proxy (--delay-ms, the network and faults matrices) fronts one MongoDB server, not shards")
    if shards != 1 and mongo_uri:
        raise UsageError("--shards starts embedded MongoDB shards; to shard over your servers give their URIs in --mongo-uri")
    target = None
    if args.target is not None:
        if (
            shards != 1 or args.matrix != "ofat" or args.workers != 1 or args.delay_ms is not None or args.frameworks
            or args.resume or mongo_uri or redis_url or args.limits
        ):  # fmt: skip
            raise UsageError("--target: the lab starts no server nor service, so --matrix, --workers, --delay-ms, "
                             "--frameworks, --resume, --mongo-uri, --redis-url and server limits do not apply")  # fmt: skip
        target = target_url(args.target)
    if args.loadgens and args.processes and args.processes != args.loadgens:
        raise UsageError(
            f"--processes {args.processes} --loadgens {args.loadgens}: the load generators are the processes; give one"
        )
    if not args.no_pin:
        try:
            core_plan(True, args.server_cores)
        except ValueError as error:
            raise UsageError(f"--server-cores {args.server_cores}: {error}") from None
    out = args.out or REPORTS / time.strftime("bench-%Y%m%d-%H%M%S")
    options = BenchOptions(
        matrix=args.matrix,
        repeats=args.repeats or _default_repeats(args.matrix, args.quick, args.measure),
        quick=args.quick,
        delay_ms=args.delay_ms,
        workers=args.workers,
        frameworks=tuple(args.frameworks) if args.frameworks else None,
        ceiling=not args.no_ceiling,
        warmup_run=not (args.no_warmup_run or args.quick),  # a quick look skips the unscored services warm-up run
        pin_cores=not args.no_pin,
        server_cores=args.server_cores,
        shards=shards,
        resume=args.resume,
        order_seed=args.order_seed,
        loadgens=LoadGens(MasterAddress.parse(args.loadgen_master), args.loadgen_wait_s) if args.loadgens else None,
        limits=args.limits,
        measure=args.measure,
        window=window,
    )
    rule_book = load_rules(rules)
    result_folder(out)
    workload = prepare_workload(spec, out / "runs", rule_book)
    load = bench_load(workload.spec.load, quick=args.quick, users=args.users, processes=args.loadgens or args.processes)
    if args.matrix == "faults":
        load = fault_load(load, args.quick)
    point_latest_at(out)
    if target is not None:
        return run_target(workload, load, options, out, target)
    if args.matrix == "overload":
        return run_overload(workload, load, options, out, capacity_rps=args.capacity_rps, mongo_uri=mongo_uri,
                            redis_url=redis_url, rules=rules, on_server=on_server)  # fmt: skip
    return run_matrix(workload, load, options, out, mongo_uri=mongo_uri, redis_url=redis_url, rules=rules, on_server=on_server)


def _check_overload(matrix: str, capacity_rps: float | None, frameworks: tuple[str, ...] | None) -> None:
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


def _check_counting(args: BenchArgs) -> InstructionWindow | None:
    """The instruction window of a bench that counts instructions (None: it only times); a UsageError for
    what cannot be counted, or where valgrind is missing."""
    if args.measure not in MEASURES:
        raise UsageError(f"--measure {args.measure}: one of {', '.join(MEASURES)}")
    if args.measure == "time":
        if args.window_requests is not None:
            raise UsageError("--window-requests applies to --measure instructions or both")
        return None
    if args.matrix in UNCOUNTED_MATRICES:
        raise UsageError(f"--measure {args.measure}: the {args.matrix} matrix judges behaviour over time, not instructions")
    if args.target is not None:
        raise UsageError(f"--measure {args.measure}: a --target server is not the lab's to run under valgrind")
    if args.window_requests is not None and args.window_requests < 1:
        raise UsageError(f"--window-requests {args.window_requests}: must be at least 1")
    valgrind_version()  # a UsageError naming what is missing
    return InstructionWindow(args.window_requests or (QUICK_WINDOW_REQUESTS if args.quick else WINDOW_REQUESTS))


def _default_repeats(matrix: str, quick: bool, measure: str = "time") -> int:
    if measure == "instructions":
        return QUICK_COUNTED_REPEATS if quick else COUNTED_REPEATS
    if matrix == "faults":
        return QUICK_FAULT_REPEATS if quick else FAULT_REPEATS
    if matrix == "overload":
        return QUICK_OVERLOAD_REPEATS if quick else OVERLOAD_REPEATS
    if matrix == "frameworks":
        return QUICK_REPEATS if quick else FRAMEWORKS_REPEATS
    return QUICK_REPEATS if quick else REPEATS
