"""Drives one server with the request stream through locust (headless FastHttpUser processes) and
merges what they recorded: counts, errors by kind, one HdrHistogram of latencies in microseconds."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hdrh.histogram import HdrHistogram

from reclab.processes import Child, ProcessGroup
from workloads.spec import LoadModel

LOCUSTFILE = Path(__file__).resolve().parents[1] / "workloads" / "locustfile.py"
STARTUP_S = 1.5  # time allowed for locust processes to import and spawn users before warm-up counts
OPEN_LOOP_DRAIN_S = 1.0  # open loop: time after the window for requests due inside it to complete
HDR_ARGS = (1, 60_000_000, 3)
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


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
        if self.histogram.get_total_count() == 0:
            return {}
        h = self.histogram
        out = {name: float(h.get_value_at_percentile(p)) for name, p in PERCENTILES.items()}
        out["max"] = float(h.get_max_value())
        out["mean"] = round(h.get_mean_value(), 1)
        return out


@dataclass
class LoadRun:
    """Locust processes started for one measurement, and the window they measure."""

    children: list[Child]
    out_prefix: Path
    measure_start: float
    measure_end: float
    processes: int
    drain_s: float


def locust_command() -> list[str]:
    locust = shutil.which("locust", path=str(Path(sys.executable).parent))
    return [locust] if locust else [sys.executable, "-m", "locust"]


def start_load(group: ProcessGroup, base_url: str, paths_file: Path, load: LoadModel, seed: int, work_dir: Path) -> LoadRun:
    """Start `load.processes` locust processes; they measure from warm-up end for `duration_s`."""
    now = time.monotonic()
    measure_start = now + STARTUP_S + load.warmup_s
    measure_end = measure_start + load.duration_s
    out_prefix = work_dir / "load"
    config = {
        "paths_file": str(paths_file),
        "processes": load.processes,
        "mode": load.mode,
        "rate": load.rate,
        "arrival": load.arrival,
        "seed": seed,
        "schedule_start": now + STARTUP_S,
        "measure_start": measure_start,
        "measure_end": measure_end,
        "out": str(out_prefix),
    }
    config_path = work_dir / "load-config.json"
    config_path.write_text(json.dumps(config))
    drain_s = OPEN_LOOP_DRAIN_S if load.mode == "open" else 0.0
    run_time = math.ceil(measure_end + drain_s - now + 0.5)  # a backstop: wait_load stops them before
    users = [load.users // load.processes + (1 if i < load.users % load.processes else 0) for i in range(load.processes)]
    children = []
    for index in range(load.processes):
        argv = [
            *locust_command(), "-f", str(LOCUSTFILE), "--headless", "--host", base_url,
            "-u", str(users[index]), "-r", str(users[index]), "--run-time", f"{run_time}s", "--stop-timeout", "1",
            "--exit-code-on-error", "0", "--only-summary", "--loglevel", "WARNING", "--skip-log-setup",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RECLAB_LOAD_CONFIG": str(config_path), "RECLAB_LOAD_INDEX": str(index)}
        children.append(group.start(f"locust-{index}", argv, work_dir / f"locust-{index}.log", env=env))
    return LoadRun(children, out_prefix, measure_start, measure_end, load.processes, drain_s)


def wait_load(group: ProcessGroup, run: LoadRun) -> LoadResult:
    """Once the measurement window has closed, stop every locust process (SIGTERM: each writes its
    result as it quits) and merge their results."""
    time.sleep(max(0.0, run.measure_end + run.drain_s - time.monotonic()))
    for child in run.children:
        group.stop(child)
    merged = HdrHistogram(*HDR_ARGS)
    totals = {"ok": 0, "sent": 0, "late_starts": 0, "unfinished": 0}
    errors: dict[str, int] = {}
    missing = 0
    for index in range(run.processes):
        path = Path(f"{run.out_prefix}.{index}.json")
        if not path.exists():
            missing += 1
            continue
        part = json.loads(path.read_text())
        for key in totals:
            totals[key] += part[key]
        for kind, n in part["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
        merged.decode_and_add(part["hdr"])
    return LoadResult(
        totals["ok"], totals["sent"], totals["late_starts"], errors, merged, run.measure_end - run.measure_start,
        totals["unfinished"], missing,
    )  # fmt: skip
