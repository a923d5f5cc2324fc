"""What a warmed-up server spends per request on the recommender, next to what the same server
spends on `/health` (the framework's floor: HTTP in, JSON out, no database, no cache).

One server per framework, on its own core, warmed on the request stream; then rounds of two closed
windows under the same load (16 users by default): the stream, then `/health`. Each window's server
CPU (all its processes, minus the pace work) is divided by the requests it served; the per-round
ratio stream / health is taken between adjacent windows, so the host's drifting CPU speed cancels.
The load comes from locust (the lab's generator), or from wrk replaying the same stream in order
(`WrkWindows`), to check one against the other.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reclab.analysis.stats import Interval, geometric_interval
from reclab.host.cores import CorePlan, core_jiffies, pin_server, process_cpu_seconds
from reclab.host.processes import ProcessGroup
from reclab.load.driver import Generator
from reclab.load.wrk import run_wrk
from reclab.results.config import key_slug
from reclab.run.metrics import MetricsDelta
from reclab.run.server import RunningServer
from workloads.spec import LoadModel, Phase

BUSY_FLOOR = 0.85  # below this share of its core the server was not what limited a window


@dataclass(frozen=True)
class Window:
    """One closed window: requests served, the server's CPU per request and share of its core, the
    server's pace (its CPU speed: `servers.core.pace`), and how busy the busiest other core was."""

    served: int
    cpu_ms_per_request: float
    core_share: float
    pace_us: float | None
    others_busy: float | None = None  # None: the server was not given a core of its own
    errors: int = 0  # failed requests, as the generator saw them


@dataclass(frozen=True)
class HotPath:
    framework: str
    variant: str
    generator: str  # locust | wrk
    stream: list[Window]
    health: list[Window]

    @property
    def ratios(self) -> list[float]:
        return [s.cpu_ms_per_request / h.cpu_ms_per_request for s, h in zip(self.stream, self.health, strict=True)]

    def ratio(self) -> Interval | None:
        return geometric_interval(self.ratios)

    def paced_ratio(self) -> Interval | None:
        """The ratio with each window's CPU at the server's pace in that window: the host's CPU speed
        can change by tens of percent between two windows seconds apart."""
        pairs = list(zip(self.stream, self.health, strict=True))
        if any(s.pace_us is None or h.pace_us is None for s, h in pairs):
            return None
        return geometric_interval(
            [(s.cpu_ms_per_request / s.pace_us) / (h.cpu_ms_per_request / h.pace_us) for s, h in pairs]  # type: ignore[operator]
        )

    @staticmethod
    def median(windows: list[Window]) -> float:
        return statistics.median(w.cpu_ms_per_request for w in windows)

    def limited_by(self) -> str:
        """`server` when the server's core was busy in every stream window; else the other cores (the
        database, the cache and the generator share them) if they were, else neither."""
        if all(w.core_share >= BUSY_FLOOR for w in self.stream):
            return "server"
        others = [w.others_busy for w in self.stream if w.others_busy is not None]
        if others and statistics.median(others) >= BUSY_FLOOR:
            busy = statistics.median(others)
            return f"the other core ({busy:.0%} busy: database, cache and generator; the server's core had idle time)"
        return "not the server (its core had idle time)"

    def as_dict(self) -> dict[str, object]:
        interval, paced = self.ratio(), self.paced_ratio()
        return {
            "framework": self.framework,
            "variant": self.variant,
            "generator": self.generator,
            "stream_cpu_ms_per_request": round(self.median(self.stream), 4),
            "health_cpu_ms_per_request": round(self.median(self.health), 4),
            "ratio": None if interval is None else round(interval.value, 3),
            "ratio_interval": _bounds(interval),
            "ratio_at_one_pace": None if paced is None else round(paced.value, 3),
            "ratio_at_one_pace_interval": _bounds(paced),
            "limited_by": self.limited_by(),
            "stream": [w.__dict__ for w in self.stream],
            "health": [w.__dict__ for w in self.health],
        }


def _bounds(interval: Interval | None) -> list[float] | None:
    return [round(interval.low, 3), round(interval.high, 3)] if interval and interval.has_interval else None  # type: ignore[arg-type]


@dataclass(frozen=True)
class HotPathPlan:
    """The load and the windows: the same for every framework measured."""

    load: LoadModel  # its users and processes; the phases are set here
    stream_file: Path
    health_file: Path  # one line: /health
    seed: int
    work_dir: Path
    rounds: int = 5
    window_s: float = 4.0
    warmup_s: float = 10.0

    def closed(self, name: str, seconds: float) -> LoadModel:
        return replace(self.load, warmup_requests=0, phases=(Phase(name, "closed", duration_s=seconds),))


class LocustWindows:
    """Closed windows from the lab's locust processes: the server is read over the window's own
    timeline (after the users have started), as in a bench run."""

    name = "locust"

    def __init__(self, generator: Generator, plan: HotPathPlan, others: list[int] | None = None) -> None:
        self.generator = generator
        self.plan = plan
        self.others = others  # the cores the server was kept off

    def window(self, server: RunningServer, load: LoadModel, paths_file: Path, run_dir: Path, counted: bool) -> Window:
        run = self.generator.prepare(server.base_url, paths_file, load, self.plan.seed, run_dir)
        window = self.generator.release(run, server.child.alive)[0]
        time.sleep(max(0.0, window.start - time.monotonic()))
        before = _reading(server)
        time.sleep(max(0.0, window.start + window.seconds - time.monotonic()))
        after = _reading(server)
        phase = self.generator.collect(run).phases[0]
        return _window(before, after, None if counted else phase.ok, self.others, sum(phase.errors.values()))


class WrkWindows:
    """Closed windows from wrk, one thread and the plan's users as connections, replaying the stream
    in order from its first line, as locust's closed windows do (so every window, warm-up included,
    serves the same requests). The server is read just before wrk starts and after it has
    reported: the window includes wrk's connecting, which costs the server next to nothing, and
    no idle time counts as CPU."""

    name = "wrk"

    def __init__(self, group: ProcessGroup, others: list[int] | None) -> None:
        self.group = group
        self.others = others  # the cores the server was kept off: wrk runs there

    def window(self, server: RunningServer, load: LoadModel, paths_file: Path, run_dir: Path, counted: bool) -> Window:
        before = _reading(server)
        report = run_wrk(
            self.group, server.base_url, paths_file, connections=load.users, seconds=load.phases[0].duration_s or 0.0,
            start=0, log_path=run_dir / "wrk.txt", cores=self.others,
        )  # fmt: skip
        after = _reading(server)
        return _window(before, after, None if counted else report.ok, self.others, report.bad_status + report.socket_errors)


def measure_hotpath(
    server: RunningServer, windows: LocustWindows | WrkWindows, plan: HotPathPlan, cores: CorePlan | None
) -> HotPath:
    """Warm `server` up on the stream, then `plan.rounds` pairs of windows (stream, /health)."""
    if cores is not None:
        pin_server(server.child.pid, cores.server)
    run_dir = plan.work_dir / key_slug(f"{server.framework} {server.variant.label()} {windows.name}")
    windows.window(server, plan.closed("warm-up", plan.warmup_s), plan.stream_file, run_dir / "warm-up", True)
    window = plan.closed("window", plan.window_s)
    stream: list[Window] = []
    health: list[Window] = []
    for n in range(plan.rounds):  # each window writes its own load records
        stream.append(windows.window(server, window, plan.stream_file, run_dir / f"stream-{n}", True))
        health.append(windows.window(server, window, plan.health_file, run_dir / f"health-{n}", False))
    return HotPath(server.framework, server.variant.label(), windows.name, stream, health)


@dataclass(frozen=True)
class _Reading:
    metrics: dict[str, Any]
    cpu_s: float
    cores: dict[int, tuple[int, int, int]]
    at: float


def _reading(server: RunningServer) -> _Reading:
    cpu_s = sum(process_cpu_seconds(pid) for pid in server.process_ids())
    return _Reading(server.get_json("/metrics"), cpu_s, core_jiffies(), time.monotonic())


def _window(before: _Reading, after: _Reading, health_ok: int | None, others: list[int] | None, errors: int) -> Window:
    """The window between two readings; `health_ok` (the generator's count of good /health answers)
    for /health, which the server's counters leave out, else None: the server's count of served."""
    metrics = MetricsDelta.between(before.metrics, after.metrics)
    served = metrics.served if health_ok is None else health_ok
    cpu_ms = (after.cpu_s - before.cpu_s) * 1000 - metrics.pace_cpu_ns / 1e6
    busy = [
        (after.cores[core][0] - before.cores[core][0]) / max(1, after.cores[core][2] - before.cores[core][2])
        for core in others or []
        if core in before.cores and core in after.cores
    ]
    return Window(
        served=served,
        cpu_ms_per_request=round(cpu_ms / max(1, served), 5),
        core_share=round((after.cpu_s - before.cpu_s) / (after.at - before.at), 4),
        pace_us=None if metrics.pace_us is None else round(metrics.pace_us, 3),
        others_busy=round(max(busy), 4) if busy else None,
        errors=errors,
    )
