"""Drives servers with the request stream through locust (headless processes that live as long as a
bench and carry out one run after another) and merges what they recorded per phase: counts, errors
by kind, one HdrHistogram of latencies in microseconds, and for a phase that sent writes the same for
its reads and its writes apart; goodput (successes within the latency objective), shed answers,
retries, and histograms of the successes' and the shed answers' latency. What each locust process is
told and writes back is `workloads.loadplan`."""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hdrh.histogram import HdrHistogram

from reclab.host.cores import CpuUse, pin
from reclab.host.processes import Child, ProcessGroup
from workloads.loadplan import (
    KindRecord,
    LoadPart,
    LoadSettings,
    PhasePlan,
    PhaseRecord,
    PhaseWindow,
    generator_environment,
    new_histogram,
    parse_stream,
)
from workloads.replay_pace import WindowPace
from workloads.spec import LoadModel

LOCUSTFILE = Path(__file__).resolve().parents[2] / "workloads" / "locustfile.py"
T0_LEAD_S = 0.1  # the measured phases start this long after the last process is warm
WARMUP_TIMEOUT_S = 180.0  # a run's warm-up prefix (and a freshly started generator's imports) must be done within this
PART_TIMEOUT_S = 10.0  # after the last phase, each process must have written its part within this
MERGED_COUNTS = (  # the counts of a PhaseRecord that add up across processes
    "ok", "expected", "sent", "unsent", "unfinished", "late_starts", "held_back", "good", "shed", "retries", "retried_ok",
)  # fmt: skip
RUN_TIME_S = 24 * 3600  # locust's own backstop; the lab stops its generator long before


@dataclass
class KindLoad:
    """One kind of entry (reads, or writes) within a phase, all processes merged."""

    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    histogram: HdrHistogram = field(default_factory=new_histogram)

    @property
    def requests(self) -> int:
        """Entries of this kind accounted for: answered, failed, unsent or unfinished."""
        return self.ok + sum(self.errors.values())

    def add(self, recorded: KindRecord) -> None:
        self.ok += recorded.ok
        _add_counts(self.errors, recorded.errors)
        if recorded.hdr:
            self.histogram.decode_and_add(recorded.hdr)


@dataclass
class PhaseLoad:
    """What the generator recorded in one measured phase, all processes merged."""

    window: PhaseWindow
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    expected: int = 0
    sent: int = 0
    unsent: int = 0
    unfinished: int = 0
    late_starts: int = 0
    held_back: int = 0
    histogram: HdrHistogram = field(default_factory=new_histogram)
    cpu_s: dict[int, float] = field(default_factory=dict)  # each process's own CPU seconds over the phase, by index
    trace: list[tuple[float, float, str]] = field(default_factory=list)  # open: (due, latency, outcome), by due time
    pace: WindowPace | None = None  # open phase of a replayed trace: how its recorded gaps were paced
    reads: KindLoad | None = None  # a phase that sent writes: its reads apart ...
    writes: KindLoad | None = None  # ... and its writes
    objective_ms: float | None = None  # what every process judged `good` by (None: a process did not, or they differed)
    good: int = 0  # successes within objective_ms
    shed: int = 0  # outcomes that were shed answers
    retries: int = 0  # extra attempts sent after shed answers
    retried_ok: int = 0  # entries that succeeded after at least one retry
    ok_histogram: HdrHistogram = field(default_factory=new_histogram)  # the successes' latency (with objective_ms) ...
    shed_histogram: HdrHistogram = field(default_factory=new_histogram)  # ... and the shed answers'
    shed_sent_histogram: HdrHistogram = field(default_factory=new_histogram)  # ... from their sending

    @property
    def throughput(self) -> float:
        """Successes per second of the window."""
        return self.ok / self.window.seconds

    @property
    def goodput(self) -> float | None:
        """Successes within the objective per second of the window; None without an objective."""
        return None if self.objective_ms is None else self.good / self.window.seconds


@dataclass
class LoadResult:
    phases: list[PhaseLoad]
    warmup_ok: int
    warmup_errors: dict[str, int]
    missing_processes: int
    failures: list[str]

    def check(self) -> None:
        """Raises unless every process carried out its part."""
        if self.missing_processes or self.failures:
            raise RuntimeError(f"load generator incomplete: {self.missing_processes} part(s) missing; {'; '.join(self.failures)}")


@dataclass
class LoadRun:
    """One run handed to the generator."""

    settings: LoadSettings
    windows: list[PhaseWindow] = field(default_factory=list)


def locust_command() -> list[str]:
    locust = shutil.which("locust", path=str(Path(sys.executable).parent))
    return [locust] if locust else [sys.executable, "-m", "locust"]


class Generator:
    """The locust processes of a bench, kept by PID in the caller's process group."""

    def __init__(self, group: ProcessGroup, processes: int, work_dir: Path, cores: list[int] | None = None) -> None:
        self.group = group
        self.processes = processes
        self.work_dir = work_dir
        self.cores = cores  # the cores its processes are pinned to, if any
        self.mailbox = work_dir / "load-mailbox.json"
        self.children: list[Child] = []
        self.start()

    def start(self) -> None:
        """(Re)start every locust process; they import locust and wait for a run in the mailbox."""
        for child in self.children:
            self.group.stop(child)
        self.mailbox.unlink(missing_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.children = []
        for index in range(self.processes):
            argv = [
                *locust_command(), "-f", str(LOCUSTFILE), "--headless", "-u", "1", "-r", "1", "--run-time", f"{RUN_TIME_S}s",
                "--stop-timeout", "0", "--exit-code-on-error", "0", "--only-summary", "--loglevel", "WARNING",
                "--skip-log-setup",
            ]  # fmt: skip
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **generator_environment(self.mailbox, index, self.processes)}
            self.children.append(self.group.start(f"locust-{index}", argv, self.work_dir / f"locust-{index}.log", env=env))
        if self.cores:
            pin(self.pids, self.cores)

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    @property
    def cpu_pids(self) -> list[int]:
        """The processes whose CPU time the lab reads as the generator's."""
        return self.pids

    def count_cpu(self, cpu: CpuUse, phase: PhaseLoad) -> None:
        """Add to `cpu` what the lab cannot read by PID: nothing here (its processes are local)."""

    def check(self) -> None:
        """Raises if the generator can no longer carry out a run."""
        if dead := [c for c in self.children if not c.alive()]:
            raise RuntimeError(f"load generator {dead[0].name} exited:\n{dead[0].log_tail(5)}")

    def prepare(
        self, base_url: str, paths_file: Path, load: LoadModel, seed: int, run_dir: Path, warmup_start: int = 0
    ) -> LoadRun:
        """A run's settings (not yet handed over)."""
        if load.processes != self.processes:
            raise ValueError(f"the generator has {self.processes} process(es); the load asks for {load.processes}")
        signal_dir = run_dir / "signals"
        signal_dir.mkdir(parents=True, exist_ok=True)
        settings = LoadSettings(
            run_id=uuid.uuid4().hex,
            host=base_url,
            paths_file=str(paths_file),
            processes=load.processes,
            users=load.users,
            arrival=load.arrival,
            max_outstanding=load.max_outstanding,
            seed=seed,
            warmup_requests=load.warmup_requests,
            warmup_start=warmup_start,
            objective_ms=load.objective_ms,
            retry_shed=load.retry_shed,
            max_retries=load.max_retries,
            phases=tuple(PhasePlan(p.name, p.mode, p.rate, p.duration_s, p.drain_s) for p in load.phases),
            signal_dir=str(signal_dir),
            out=str(run_dir / "load"),
        )
        return LoadRun(settings)

    def release(self, run: LoadRun, alive: Callable[[], bool]) -> list[PhaseWindow]:
        """Hand the run over and let it warm up; once every process is warm, fix the measured phases'
        timeline. Raises if the server dies, a locust process dies, or the warm-up takes too long."""
        settings = run.settings
        settings.post(self.mailbox)
        deadline = time.monotonic() + WARMUP_TIMEOUT_S
        warm = [settings.signal(f"warm.{i}") for i in range(settings.processes)]
        while not all(path.exists() for path in warm):
            if not alive():
                raise RuntimeError("server exited during warm-up")
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"warm-up ({settings.warmup_requests} requests) not done within {WARMUP_TIMEOUT_S:.0f} s")
            time.sleep(0.005)
        t0 = time.monotonic() + T0_LEAD_S
        settings.send("t0", {"t0": t0})
        run.windows = settings.phase_windows(t0)
        return run.windows

    def collect(self, run: LoadRun) -> LoadResult:
        """Wait for every process's part of the run, and merge them."""
        settings = run.settings
        deadline = run.windows[-1].settled + PART_TIMEOUT_S
        paths = [settings.part_path(i) for i in range(settings.processes)]
        while not all(p.exists() for p in paths) and time.monotonic() < deadline:
            time.sleep(0.005)
        result = merge_parts(run.windows, paths)
        add_paces(settings, result.phases)
        return result


def add_paces(settings: LoadSettings, phases: list[PhaseLoad]) -> None:
    """How each open phase of a replayed trace was paced (the same computation as the locust processes')."""
    if settings.arrival != "trace":
        return
    _, gaps = parse_stream(Path(settings.paths_file).read_text())
    for number, phase in enumerate(phases):
        if phase.window.mode == "open":
            phase.pace = settings.window_pace(number, gaps)


def merge_parts(windows: list[PhaseWindow], paths: list[Path]) -> LoadResult:
    phases = [PhaseLoad(window) for window in windows]
    split: dict[str, list[PhaseRecord]] = {window.name: [] for window in windows}
    warmup_errors: dict[str, int] = {}
    warmup_ok, missing, failures = 0, 0, []
    for path in paths:
        if not path.exists():
            missing += 1
            continue
        part = LoadPart.read(path)
        warmup_ok += part.warmup_ok
        _add_counts(warmup_errors, part.warmup_errors)
        if part.failure:
            failures.append(f"locust-{part.index}: {part.failure}")
        for merged, recorded in zip(phases, part.phases, strict=False):
            split[merged.window.name].append(recorded)
            merged.cpu_s[part.index] = recorded.cpu_s
            for name in MERGED_COUNTS:
                setattr(merged, name, getattr(merged, name) + getattr(recorded, name))
            _add_counts(merged.errors, recorded.errors)
            merged.histogram.decode_and_add(recorded.hdr)
            merged.trace.extend(tuple(entry) for entry in recorded.trace)  # type: ignore[misc]
    for phase in phases:
        phase.trace.sort()
        _split(phase, split[phase.window.name])
        _judged(phase, split[phase.window.name])
    return LoadResult(phases, warmup_ok, warmup_errors, missing, failures)


def _judged(phase: PhaseLoad, recorded: list[PhaseRecord]) -> None:
    """The objective and the successes' and shed answers' histograms, if every process judged its
    answers by the same objective (a part from before goodput was recorded judged none)."""
    objectives = {r.objective_ms for r in recorded}
    if len(objectives) != 1 or None in objectives:
        phase.good = 0
        return
    phase.objective_ms = objectives.pop()
    for r in recorded:
        phase.ok_histogram.decode_and_add(r.hdr_ok)
        phase.shed_histogram.decode_and_add(r.hdr_shed)
        if r.hdr_shed_sent:
            phase.shed_sent_histogram.decode_and_add(r.hdr_shed_sent)


def _split(phase: PhaseLoad, recorded: list[PhaseRecord]) -> None:
    """Reads and writes apart, if any process sent writes in the phase (a process that sent none: all
    its entries were reads)."""
    if not any(r.writes is not None for r in recorded):
        return
    phase.reads, phase.writes = KindLoad(), KindLoad()
    for r in recorded:
        phase.reads.add(r.reads or KindRecord(r.ok, r.errors, r.hdr))
        if r.writes is not None:
            phase.writes.add(r.writes)


def _add_counts(total: dict[str, int], more: dict[str, int]) -> None:
    for kind, n in more.items():
        total[kind] = total.get(kind, 0) + n
