"""`reclab capacity`: each variant's highest sustained arrival rate at a latency objective (see
`reclab.run.capacity`), into DIR/results.jsonl; `reclab report DIR` draws its table and curves."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from reclab import REPORTS
from reclab.errors import UsageError
from reclab.run.capacity import CapacityPlan, run_capacity
from reclab.run.capacity_search import Objective
from reclab.run.folders import point_latest_at, result_folder
from reclab.run.matrix import MatrixEntry, build_matrix, rules_for
from reclab.run.options import Connections, Switches
from reclab.run.runner import BenchOptions, bench_load
from reclab.run.workload import prepare_workload
from servers.core.variant import SELF_SERVED
from workloads.spec import DEFAULT_SPEC

REPEATS, QUICK_REPEATS = 2, 1


@dataclass(frozen=True, kw_only=True)
class CapacityArgs:
    """`reclab capacity`'s flags as given."""

    spec: Path = DEFAULT_SPEC
    switches: Switches
    connections: Connections = field(default_factory=Connections)
    frameworks: tuple[str, ...] | None = None  # None: the self-served frameworks
    matrix: str | None = None  # a bench matrix's variants instead of the switches on each framework
    slo_p99_ms: float = 100.0
    max_error_rate: float = 0.001
    quick: bool = False
    repeats: int | None = None
    start_rps: float = 25.0
    out: Path | None = None  # None: reports/capacity-<time>
    order_seed: int | None = None
    no_pin: bool = False


def capacity(args: CapacityArgs) -> int:
    """0 when every search ended with a confirmed capacity, 3 when some did not."""
    if not (0 < args.slo_p99_ms < math.inf) or not 0 <= args.max_error_rate < 1:
        raise UsageError("--slo-p99-ms must be positive and --max-error-rate between 0 and 1")
    if not 1 <= args.start_rps < math.inf:
        raise UsageError(f"--start-rps {args.start_rps:g}: must be at least 1")
    if args.repeats is not None and args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: must be at least 1")
    objective = Objective(args.slo_p99_ms, args.max_error_rate)
    plan = CapacityPlan.quick(objective, args.start_rps) if args.quick else CapacityPlan(objective, args.start_rps)
    entries = capacity_entries(args.switches, args.frameworks, args.matrix)
    rules = rules_for(args.matrix or "", args.connections.rules)
    out = args.out or REPORTS / time.strftime("capacity-%Y%m%d-%H%M%S")
    repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS)
    options = BenchOptions(matrix=args.matrix or "capacity", repeats=repeats, quick=args.quick, pin_cores=not args.no_pin,
                           order_seed=args.order_seed, ceiling=False, warmup_run=False)  # fmt: skip
    result_folder(out)
    workload = prepare_workload(args.spec, out / "runs")
    load = bench_load(workload.spec.load, quick=args.quick, users=None, processes=None)
    point_latest_at(out)
    return run_capacity(workload, load, options, plan, entries, out, mongo_uri=args.connections.mongo_uri,
                        redis_url=args.connections.redis_url, rules=rules)  # fmt: skip


def capacity_entries(switches: Switches, frameworks: tuple[str, ...] | None, matrix: str | None) -> list[MatrixEntry]:
    """The switches on each framework (the first is the baseline), or a bench matrix without its A/A
    copy (a second search of the same variant is what `--repeats` gives)."""
    chosen = frameworks or SELF_SERVED  # FastAPI and Starlette when asked (--frameworks fastapi)
    if matrix is None:
        configs = [switches.config(fw) for fw in chosen]
        return [MatrixEntry(configs[0], "baseline"), *(MatrixEntry(c) for c in configs[1:])]
    if matrix == "faults":
        raise UsageError("--matrix faults judges survival under faults, not capacity")
    entries = [e for e in build_matrix(matrix) if e.role != "aa" and (not frameworks or e.config.stack in frameworks)]
    if not entries:
        raise UsageError(f"--matrix {matrix} --frameworks {' '.join(chosen)}: no variant left")
    return entries
