"""What a warmed-up server spends per request on the recommender, next to what the same server
spends on `/health` (the framework's floor: HTTP in, JSON out, no database, no cache).

One server per framework, on its own core, warmed on the request stream; then rounds of two closed
windows under the same load (16 users by default): the stream, then `/health`. Each window's server
CPU (all its processes, minus the pace work) is divided by the requests it served; the per-round
ratio stream / health is taken between adjacent windows, so the host's drifting CPU speed cancels.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from reclab.analysis.stats import Interval, geometric_interval
from reclab.host.cores import CorePlan, pin_server, process_cpu_seconds
from reclab.load.driver import Generator
from reclab.results.config import key_slug
from reclab.run.metrics import MetricsDelta
from reclab.run.server import RunningServer
from workloads.spec import LoadModel, Phase

BUSY_FLOOR = 0.85  # below this share of its core the server was not what limited a window


@dataclass(frozen=True)
class Window:
    """One closed window: requests served, the server's CPU per request and share of its core."""

    served: int
    cpu_ms_per_request: float
    core_share: float
    pace_us: float | None


@dataclass(frozen=True)
class HotPath:
    framework: str
    variant: str
    stream: list[Window]
    health: list[Window]

    @property
    def ratios(self) -> list[float]:
        return [s.cpu_ms_per_request / h.cpu_ms_per_request for s, h in zip(self.stream, self.health, strict=True)]

    def ratio(self) -> Interval | None:
        return geometric_interval(self.ratios)

    @staticmethod
    def median(windows: list[Window]) -> float:
        return statistics.median(w.cpu_ms_per_request for w in windows)

    def limited_by(self) -> str:
        """`server` when the server's core was busy in every stream window, else what it was not."""
        return "server" if all(w.core_share >= BUSY_FLOOR for w in self.stream) else "not the server (its core had idle time)"

    def as_dict(self) -> dict[str, object]:
        interval = self.ratio()
        bounds = [round(interval.low, 3), round(interval.high, 3)] if interval and interval.has_interval else None  # type: ignore[arg-type]
        return {
            "framework": self.framework,
            "variant": self.variant,
            "stream_cpu_ms_per_request": round(self.median(self.stream), 4),
            "health_cpu_ms_per_request": round(self.median(self.health), 4),
            "ratio": None if interval is None else round(interval.value, 3),
            "ratio_interval": bounds,
            "limited_by": self.limited_by(),
            "stream": [w.__dict__ for w in self.stream],
            "health": [w.__dict__ for w in self.health],
        }


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


def measure_hotpath(server: RunningServer, generator: Generator, plan: HotPathPlan, cores: CorePlan | None) -> HotPath:
    """Warm `server` up on the stream, then `plan.rounds` pairs of windows (stream, /health)."""
    if cores is not None:
        pin_server(server.child.pid, cores.server)
    run_dir = plan.work_dir / key_slug(f"{server.framework} {server.variant.label()}")
    closed_window(server, generator, plan, plan.closed("warm-up", plan.warmup_s), plan.stream_file, run_dir / "warm-up")
    window = plan.closed("window", plan.window_s)
    stream: list[Window] = []
    health: list[Window] = []
    for n in range(plan.rounds):  # each window writes its own load records
        stream.append(closed_window(server, generator, plan, window, plan.stream_file, run_dir / f"stream-{n}"))
        health.append(closed_window(server, generator, plan, window, plan.health_file, run_dir / f"health-{n}", counted=False))
    return HotPath(server.framework, server.variant.label(), stream, health)


def closed_window(
    server: RunningServer,
    generator: Generator,
    plan: HotPathPlan,
    load: LoadModel,
    paths_file: Path,
    run_dir: Path,
    counted: bool = True,
) -> Window:
    """One closed window; `counted` False for /health, which the server's counters leave out."""
    run = generator.prepare(server.base_url, paths_file, load, plan.seed, run_dir)
    window = generator.release(run, server.child.alive)[0]
    time.sleep(max(0.0, window.start - time.monotonic()))
    before, cpu_before, started = server.get_json("/metrics"), _cpu(server), time.monotonic()
    time.sleep(max(0.0, window.start + window.seconds - time.monotonic()))
    after, cpu_after, ended = server.get_json("/metrics"), _cpu(server), time.monotonic()
    result = generator.collect(run)
    metrics = MetricsDelta.between(before, after)
    served = metrics.served if counted else result.phases[0].ok
    cpu_ms = (cpu_after - cpu_before) * 1000 - metrics.pace_cpu_ns / 1e6
    return Window(
        served=served,
        cpu_ms_per_request=round(cpu_ms / max(1, served), 5),
        core_share=round((cpu_after - cpu_before) / (ended - started), 4),
        pace_us=None if metrics.pace_us is None else round(metrics.pace_us, 3),
    )


def _cpu(server: RunningServer) -> float:
    return sum(process_cpu_seconds(pid) for pid in server.process_ids())
