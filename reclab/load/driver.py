"""Drives one server with the request stream through locust (headless FastHttpUser processes) and
merges what they recorded: counts, errors by kind, one HdrHistogram of latencies in microseconds.
What each locust process is told and writes back is `workloads.loadplan`."""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hdrh.histogram import HdrHistogram

from reclab.host.processes import Child, ProcessGroup
from workloads.loadplan import LoadPart, LoadSettings, new_histogram, percentiles_us
from workloads.spec import LoadModel

LOCUSTFILE = Path(__file__).resolve().parents[2] / "workloads" / "locustfile.py"
STARTUP_S = 1.5  # time allowed for locust processes to import and spawn users before warm-up counts
OPEN_LOOP_DRAIN_S = 1.0  # open loop: time after the window for requests due inside it to complete


@dataclass
class LoadResult:
    ok: int
    sent: int
    late_starts: int
    errors: dict[str, int]
    histogram: HdrHistogram
    duration_s: float
    unfinished: int = 0  # open loop: due in the window, still unanswered at the end
    missing_processes: int = 0

    @property
    def throughput(self) -> float:
        return self.ok / self.duration_s

    def latency_us(self) -> dict[str, float]:
        return percentiles_us(self.histogram)


@dataclass
class LoadRun:
    """Locust processes started for one measurement, and the window they measure."""

    children: list[Child]
    settings: LoadSettings
    drain_s: float

    @property
    def measure_start(self) -> float:
        return self.settings.measure_start

    @property
    def measure_end(self) -> float:
        return self.settings.measure_end


def locust_command() -> list[str]:
    locust = shutil.which("locust", path=str(Path(sys.executable).parent))
    return [locust] if locust else [sys.executable, "-m", "locust"]


def start_load(group: ProcessGroup, base_url: str, paths_file: Path, load: LoadModel, seed: int, work_dir: Path) -> LoadRun:
    """Start `load.processes` locust processes; they measure from warm-up end for `duration_s`."""
    now = time.monotonic()
    measure_start = now + STARTUP_S + load.warmup_s
    settings = LoadSettings(
        paths_file=str(paths_file),
        processes=load.processes,
        mode=load.mode,
        rate=load.rate,
        arrival=load.arrival,
        seed=seed,
        schedule_start=now + STARTUP_S,
        measure_start=measure_start,
        measure_end=measure_start + load.duration_s,
        out=str(work_dir / "load"),
    )
    settings_path = work_dir / "load-config.json"
    settings.write(settings_path)
    drain_s = OPEN_LOOP_DRAIN_S if load.mode == "open" else 0.0
    run_time = math.ceil(settings.measure_end + drain_s - now + 0.5)  # a backstop: wait_load stops them before
    users = [load.users // load.processes + (1 if i < load.users % load.processes else 0) for i in range(load.processes)]
    children = []
    for index in range(load.processes):
        argv = [
            *locust_command(), "-f", str(LOCUSTFILE), "--headless", "--host", base_url,
            "-u", str(users[index]), "-r", str(users[index]), "--run-time", f"{run_time}s", "--stop-timeout", "1",
            "--exit-code-on-error", "0", "--only-summary", "--loglevel", "WARNING", "--skip-log-setup",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **settings.environment(settings_path, index)}
        children.append(group.start(f"locust-{index}", argv, work_dir / f"locust-{index}.log", env=env))
    return LoadRun(children, settings, drain_s)


def wait_load(group: ProcessGroup, run: LoadRun) -> LoadResult:
    """Once the measurement window has closed, stop every locust process (SIGTERM: each writes its
    part as it quits) and merge their parts."""
    time.sleep(max(0.0, run.measure_end + run.drain_s - time.monotonic()))
    for child in run.children:
        group.stop(child)
    merged = new_histogram()
    totals = {"ok": 0, "sent": 0, "late_starts": 0, "unfinished": 0}
    errors: dict[str, int] = {}
    missing = 0
    for index in range(run.settings.processes):
        path = run.settings.part_path(index)
        if not path.exists():
            missing += 1
            continue
        part = LoadPart.read(path)
        for key in totals:
            totals[key] += getattr(part, key)
        for kind, n in part.errors.items():
            errors[kind] = errors.get(kind, 0) + n
        merged.decode_and_add(part.hdr)
    return LoadResult(
        totals["ok"], totals["sent"], totals["late_starts"], errors, merged, run.measure_end - run.measure_start,
        totals["unfinished"], missing,
    )  # fmt: skip
