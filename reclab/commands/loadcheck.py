"""`reclab loadcheck`: does load from `reclab loadgen` workers (locust's distributed mode through a
master) give the same throughput as the same number of local locust processes? On this machine, over
loopback: one warmed baseline server on its own core; the local processes and the attached workers
(started here, pinned where the local ones are) take turns, in alternating order, on closed windows
of the request stream and of `/health` (where the generator itself is the limit). Prints each
throughput ratio distributed / local with its 95% interval, says whether it lies within ±10% (and
whether its whole interval does), and writes OUT/loadcheck.json."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec

from reclab.analysis.stats import Interval, geometric_interval
from reclab.host.cores import core_plan, pin, pin_server
from reclab.host.processes import ProcessGroup, python_module, stop_on_signals
from reclab.load.distributed import DistributedGenerator, MasterAddress
from reclab.load.driver import Generator
from reclab.run.hotpath import HotPathPlan, LocustWindows
from reclab.run.matrix import BASELINE
from reclab.run.server import RunningServer, start_server
from reclab.run.workload import prepare_workload
from reclab.services.start import start_services

USERS = 16
MARGIN = 0.10  # the distributed path should give the local throughput within this
ATTACH_WAIT_S = 120.0


@dataclass(frozen=True)
class Throughputs:
    """Requests per second of each generator, window by window, on one route."""

    route: str
    local: list[float]
    distributed: list[float]

    def ratio(self) -> Interval | None:
        return geometric_interval([d / b for d, b in zip(self.distributed, self.local, strict=True) if b > 0])

    def within_margin(self) -> bool:
        """The ratio (geometric mean over rounds) within ±10%."""
        ratio = self.ratio()
        return bool(ratio and abs(ratio.value - 1) <= MARGIN)

    def shown_equivalent(self) -> bool:
        """Its whole 95% interval within ±10% too (equivalence shown, not only a close estimate)."""
        ratio = self.ratio()
        return bool(ratio and ratio.has_interval and ratio.low >= 1 - MARGIN and ratio.high <= 1 + MARGIN)  # type: ignore[operator]

    def verdict(self) -> str:
        if self.shown_equivalent():
            return "equivalent within ±10%: the whole interval"
        if self.within_margin():
            return "within ±10%; the interval is wider (noise between windows: add --rounds to narrow it)"
        return "NOT within ±10%"

    def as_dict(self) -> dict[str, object]:
        ratio = self.ratio()
        return {
            "route": self.route,
            "local_rps": self.local,
            "distributed_rps": self.distributed,
            "ratio": None if ratio is None else round(ratio.value, 4),
            "ratio_interval": [round(ratio.low, 4), round(ratio.high, 4)] if ratio and ratio.has_interval else None,  # type: ignore[arg-type]
            "within_10_percent": self.within_margin(),
            "interval_within_10_percent": self.shown_equivalent(),
        }


def loadcheck(
    *,
    spec: Path,
    out: Path,
    rules: Path,
    processes: int = 2,
    rounds: int = 5,
    window_s: float = 4.0,
    warmup_s: float = 15.0,
    master: str = "127.0.0.1:5557",
    pin_cores: bool = True,
    mongo_uri: str | None = None,
    redis_url: str | None = None,
) -> int:
    """0 when both ratios lie within ±10%, 1 when not."""
    address = MasterAddress.parse(master)
    work_dir = out / "loadcheck"
    workload = prepare_workload(spec, work_dir)
    health_file = work_dir / "health.txt"
    health_file.write_text("/health")
    load = replace(workload.spec.load, users=max(USERS, processes), processes=processes)
    plan = HotPathPlan(load, workload.paths_file, health_file, workload.spec.requests.seed, work_dir, rounds, window_s, warmup_s)
    cores = core_plan(pin_cores)
    others = cores.others if cores else None
    variant = BASELINE.variant
    with stop_on_signals(), ProcessGroup() as group:
        endpoints = start_services(
            group, spec, out / "logs", mongo_uri=mongo_uri, redis_url=redis_url, need_redis=variant.needs_redis
        )
        local = Generator(group, processes, work_dir / "local", others)
        pinned = ["--cores", *map(str, others)] if others else []
        args = ["loadgen", "--master", str(address), "--processes", str(processes), "--log-dir", str(work_dir / "loadgen")]
        args += pinned
        group.start("loadgen", python_module("reclab.cli", *args), work_dir / "loadgen.log")
        distributed = DistributedGenerator(group, processes, work_dir / "distributed", address, ATTACH_WAIT_S, others)
        if cores is not None:
            pin([*endpoints.pids.values(), os.getpid()], cores.others)
        server = start_server(group, BASELINE.framework, variant, endpoints, work_dir, rules=rules, loop=BASELINE.loop)
        if cores is not None:
            pin_server(server.child.pid, cores.server)
        LocustWindows(local, plan).window(server, plan.closed("warm-up", warmup_s), plan.stream_file, work_dir / "warm-up", True)
        results = [
            _alternate(server, local, distributed, plan, plan.stream_file, "stream", counted=True),
            _alternate(server, local, distributed, plan, plan.health_file, "/health", counted=False),
        ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "loadcheck.json").write_bytes(
        msgspec.json.format(msgspec.json.encode([r.as_dict() for r in results]), indent=2) + b"\n"
    )
    print(f"throughput, {processes} `reclab loadgen` workers vs {processes} local locust processes, {rounds} x {window_s:g} s:")
    for result in results:
        ratio = result.ratio()
        local_rps, distributed_rps = statistics.median(result.local), statistics.median(result.distributed)
        print(
            f"  {result.route}: local {local_rps:.0f} req/s, distributed {distributed_rps:.0f} req/s, "
            f"ratio {ratio.text(3) if ratio else '–'}: {result.verdict()}"
        )
    print(f"  {out / 'loadcheck.json'}")
    return 0 if all(r.within_margin() for r in results) else 1


def _alternate(
    server: RunningServer, local: Generator, distributed: Generator, plan: HotPathPlan, paths_file: Path, route: str,
    *, counted: bool,
) -> Throughputs:  # fmt: skip
    """`plan.rounds` pairs of windows, the order swapped every round."""
    window = plan.closed("window", plan.window_s)
    rates: dict[str, list[float]] = {"local": [], "distributed": []}
    for n in range(plan.rounds):
        order = [("local", local), ("distributed", distributed)]
        for name, generator in order if n % 2 == 0 else order[::-1]:
            run_dir = plan.work_dir / f"{route.strip('/')}-{name}-{n}"
            measured = LocustWindows(generator, plan).window(server, window, paths_file, run_dir, counted)
            rates[name].append(round(measured.served / plan.window_s, 1))
    return Throughputs(route, rates["local"], rates["distributed"])
