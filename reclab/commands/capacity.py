"""`reclab capacity`: each variant's highest sustained arrival rate at a latency objective (see
`reclab.run.capacity`), into DIR/results.jsonl; `reclab report DIR` draws its table and curves."""

from __future__ import annotations

import math
import time
from pathlib import Path

from reclab import REPORTS
from reclab.commands.bench import point_latest_at, result_folder
from reclab.errors import UsageError
from reclab.results.config import RunConfig
from reclab.run.capacity import CapacityPlan, run_capacity
from reclab.run.capacity_search import Objective
from reclab.run.matrix import MatrixEntry, build_matrix, rules_for
from reclab.run.runner import BenchOptions, bench_load
from reclab.run.workload import prepare_workload
from servers.core.variant import SELF_SERVED, Variant

REPEATS, QUICK_REPEATS = 2, 1


def capacity(
    *,
    spec: Path,
    rules: Path,
    variant: Variant,
    loop: str = "uvloop",
    frameworks: list[str] | None = None,
    matrix: str | None = None,
    slo_p99_ms: float = 100.0,
    max_error_rate: float = 0.001,
    quick: bool = False,
    repeats: int | None = None,
    start_rps: float = 25.0,
    out: Path | None = None,
    order_seed: int | None = None,
    no_pin: bool = False,
    mongo_uri: str | None = None,
    redis_url: str | None = None,
) -> int:
    """0 when every search ended with a confirmed capacity, 3 when some did not."""
    if not (0 < slo_p99_ms < math.inf) or not 0 <= max_error_rate < 1:
        raise UsageError("--slo-p99-ms must be positive and --max-error-rate between 0 and 1")
    if not 1 <= start_rps < math.inf:
        raise UsageError(f"--start-rps {start_rps:g}: must be at least 1")
    if repeats is not None and repeats < 1:
        raise UsageError(f"--repeats {repeats}: must be at least 1")
    objective = Objective(slo_p99_ms, max_error_rate)
    plan = CapacityPlan.quick(objective, start_rps) if quick else CapacityPlan(objective, start_rps)
    entries = capacity_entries(variant, loop, frameworks, matrix)
    rules = rules_for(matrix or "", rules)
    out = out or REPORTS / time.strftime("capacity-%Y%m%d-%H%M%S")
    options = BenchOptions(matrix=matrix or "capacity", repeats=repeats or (QUICK_REPEATS if quick else REPEATS), quick=quick,
                           pin_cores=not no_pin, order_seed=order_seed, ceiling=False, warmup_run=False)  # fmt: skip
    result_folder(out)
    workload = prepare_workload(spec, out / "runs")
    load = bench_load(workload.spec.load, quick=quick, users=None, processes=None)
    point_latest_at(out)
    return run_capacity(workload, load, options, plan, entries, out, mongo_uri=mongo_uri, redis_url=redis_url, rules=rules)


def capacity_entries(variant: Variant, loop: str, frameworks: list[str] | None, matrix: str | None) -> list[MatrixEntry]:
    """The variant on each framework (the first is the baseline), or a bench matrix without its A/A
    copy (a second search of the same variant is what `--repeats` gives)."""
    chosen = frameworks or list(SELF_SERVED)  # FastAPI and Starlette when asked (--frameworks fastapi)
    if matrix is None:
        configs = [RunConfig.of(fw, variant, loop) for fw in chosen]
        return [MatrixEntry(configs[0], "baseline"), *(MatrixEntry(c) for c in configs[1:])]
    if matrix == "faults":
        raise UsageError("--matrix faults judges survival under faults, not capacity")
    entries = [e for e in build_matrix(matrix) if e.role != "aa" and (not frameworks or e.config.stack in frameworks)]
    if not entries:
        raise UsageError(f"--matrix {matrix} --frameworks {' '.join(chosen)}: no variant left")
    return entries
