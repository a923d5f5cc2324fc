"""The handshake between the lab's load driver and the locustfile: what a locust process is told
(one run's settings and timeline), how it records latency (HDR bounds, percentiles), and what it
writes back (its part).

The locust processes live as long as a bench and carry out one run after another. For each run the
driver writes the run's settings into the mailbox (a file named in the environment); each process
serves its share of the stream's warm-up prefix (closed loop) and writes `warm.<index>` into the
run's signal folder; once every process is warm, the driver writes `t0` (a time.monotonic() moment
shortly ahead) and every measured phase runs on the timeline that `phase_windows(t0)` gives both
sides. Each process then writes its part and waits for the next run. A distributed generator's
master (`workloads.bridge`) stands in for its workers on the same files. Stream positions are fixed:
the warm-up serves entries [0, warmup), an open phase the entries after it in arrival order, a
closed phase those after everything scheduled before it, so every variant serves the same requests.

A stream file holds one entry per line: a read (a GET path) or a write (`POST /events {...}`, whose
form is `workloads.writes`); a stream replayed from a trace has `entry<TAB>gap` lines, the gap being
the recorded seconds since the entry before, and its open phases (arrival `trace`) send their entries
at those gaps, scaled per window so that each window offers its phase's rate
(`workloads.replay_pace`). Every entry, read or write, is one arrival: a phase's rate, and the rate
it offered, count both. A phase whose entries included writes also records reads and writes apart
(`PhaseRecord.reads`, `.writes`).

An answer refused by the server's admission control (503, a body starting `{"error":"overloaded"`)
is the error kind `shed`; other 503s keep `http_503`. A phase also records its goodput (the
successes within the run's latency objective) and, in histograms of their own, the latency of its
successes and of its shed answers. With `retry_shed` a shed entry is sent again after the reply's
Retry-After (`retry_after_s`), up to `max_retries` times; its outcome is its last attempt's.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from hdrh.histogram import HdrHistogram

from workloads.replay_pace import WindowPace, arrivals_in, paced_offsets

MAILBOX_ENV = "RECLAB_LOAD_MAILBOX"
INDEX_ENV = "RECLAB_LOAD_INDEX"
PROCESSES_ENV = "RECLAB_LOAD_PROCESSES"
HDR_MIN_US, HDR_MAX_US, HDR_DIGITS = 1, 60_000_000, 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
SHED = "shed"  # the error kind of an answer refused by admission control
SHED_BODY = b'{"error":"overloaded"'  # how such a 503's body starts
RETRY_AFTER_DEFAULT_S, RETRY_AFTER_MAX_S = 1.0, 10.0  # a shed answer's wait when its Retry-After is unusable; the longest
OPEN_DRAIN_S = 0.3  # after an open phase: time for requests due inside it to complete before the next phase
SIGNAL_POLL_S = 0.005
# locust master/worker messages of a distributed generator (workloads.bridge, workloads.channels)
RUN_MESSAGE, T0_MESSAGE, WARM_MESSAGE, PART_MESSAGE = "reclab_run", "reclab_t0", "reclab_warm", "reclab_part"


def parse_stream(text: str) -> tuple[list[str], list[float] | None]:
    """A stream file's entries, and its gaps if it was replayed from a trace."""
    lines = text.splitlines()
    if not lines or "\t" not in lines[0]:
        return lines, None
    paths, gaps = [], []
    for line in lines:
        path, _, gap = line.partition("\t")
        paths.append(path)
        gaps.append(float(gap))
    return paths, gaps


def format_stream(paths: list[str], gaps: list[float] | None) -> str:
    """The stream file's text (see parse_stream)."""
    if gaps is None:
        return "\n".join(paths)
    return "\n".join(f"{path}\t{gap:.6f}" for path, gap in zip(paths, gaps, strict=True))


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in microseconds, 1 µs to 60 s, 3 significant digits."""
    return HdrHistogram(HDR_MIN_US, HDR_MAX_US, HDR_DIGITS)


def record_us(histogram: HdrHistogram, latency_us: float) -> None:
    """Record one latency, clamped into the histogram's range (a 2-minute stall counts as 60 s)."""
    histogram.record_value(max(HDR_MIN_US, min(HDR_MAX_US, round(latency_us))))


def retry_after_s(value: str | None) -> float:
    """The seconds a shed answer's Retry-After asks to wait (delay-seconds, at most RETRY_AFTER_MAX_S);
    RETRY_AFTER_DEFAULT_S when it is missing or not a whole number of seconds."""
    if value is not None and (text := value.strip()).isascii() and text.isdigit():
        return min(float(text), RETRY_AFTER_MAX_S)
    return RETRY_AFTER_DEFAULT_S


def percentiles_us(histogram: HdrHistogram) -> dict[str, float]:
    """p50, p90, p99, p99.9, max and mean in µs; empty when nothing was recorded."""
    if histogram.get_total_count() == 0:
        return {}
    out = {name: float(histogram.get_value_at_percentile(p)) for name, p in PERCENTILES.items()}
    out["max"] = float(histogram.get_max_value())
    out["mean"] = round(histogram.get_mean_value(), 1)
    return out


@dataclass(frozen=True)
class PhasePlan:
    """One measured phase as the locust processes are told it."""

    name: str
    mode: str  # open | closed
    rate: float  # open: arrivals per second, all processes together
    duration_s: float
    drain_s: float = OPEN_DRAIN_S  # open: how long requests due in the window are given to complete after it


@dataclass(frozen=True)
class PhaseWindow:
    """One measured phase on the run's timeline (time.monotonic() seconds)."""

    name: str
    mode: str  # open | closed
    rate: float
    start: float
    end: float  # the measurement window is [start, end)
    settled: float  # open: requests due in the window are given until here to complete

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class LoadSettings:
    """What every locust process of one run is told."""

    run_id: str
    host: str  # the server's base URL
    paths_file: str  # the request stream, one path per line
    processes: int
    users: int  # closed loop and warm-up: requests in flight, all processes together
    arrival: str  # poisson | constant | trace
    max_outstanding: int  # open loop: requests in flight at most, all processes together
    seed: int
    warmup_requests: int  # the measured phases start at this stream position
    phases: tuple[PhasePlan, ...]
    signal_dir: str
    out: str  # prefix of the part files
    timeout_s: float = 10.0  # connect and read timeout of one request
    warmup_start: int = 0  # the warm-up serves stream entries [warmup_start, warmup_requests)
    objective_ms: float = 100.0  # goodput: a success counts as good if answered within this
    retry_shed: bool = False  # a shed entry is sent again after its Retry-After ...
    max_retries: int = 3  # ... this many times at most

    @property
    def retries_allowed(self) -> int:
        """Extra attempts of one shed entry: max_retries when clients retry, else none."""
        return self.max_retries if self.retry_shed else 0

    def post(self, mailbox: Path) -> None:
        """Hand this run to the locust processes waiting on `mailbox`."""
        partial = mailbox.with_name(mailbox.name + ".part")
        partial.write_bytes(msgspec.json.encode(asdict(self)))
        os.replace(partial, mailbox)

    @classmethod
    def read(cls, mailbox: Path) -> LoadSettings | None:
        try:
            data = msgspec.json.decode(mailbox.read_bytes())
        except (OSError, ValueError):
            return None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadSettings:
        return cls(**{**data, "phases": tuple(PhasePlan(**p) for p in data["phases"])})

    def part_path(self, index: int) -> Path:
        return Path(f"{self.out}.{index}.json")

    def share(self, total: int, index: int) -> int:
        """Process `index`'s share of `total` (users, outstanding requests)."""
        return total // self.processes + (1 if index < total % self.processes else 0)

    # -- the timeline ------------------------------------------------------------------
    def phase_windows(self, t0: float) -> list[PhaseWindow]:
        windows, cursor = [], t0
        for phase in self.phases:
            end = cursor + phase.duration_s
            settled = end + phase.drain_s if phase.mode == "open" else end
            windows.append(PhaseWindow(phase.name, phase.mode, phase.rate, cursor, end, settled))
            cursor = settled
        return windows

    def arrival_offsets(self, number: int, gaps: list[float] | None = None) -> list[float]:
        """Due times (seconds after open phase `number` starts) of every arrival in it, all processes
        together; arrival j goes to process j % processes and serves the j-th entry of the phase.
        Every open phase offers its rate, rate x duration arrivals (`replay_pace.arrivals_in`): `poisson`
        places them as a Poisson process holding exactly that many (seeded), `constant` evenly from
        the window's start, `trace` at the entries' recorded `gaps`, paced to the rate
        (`workloads.replay_pace`: the first at 0)."""
        phase = self.phases[number]
        if self.arrival == "trace":
            return paced_offsets(self._recorded_gaps(number, gaps), phase.duration_s)[0]
        n = arrivals_in(phase.rate, phase.duration_s)
        if self.arrival == "poisson":  # a Poisson process given its count: that many uniform moments, sorted
            rng = random.Random(f"arrivals-{self.seed}-{number}")
            return sorted(rng.uniform(0.0, phase.duration_s) for _ in range(n))
        return [j * phase.duration_s / n for j in range(n)]

    def window_pace(self, number: int, gaps: list[float] | None = None) -> WindowPace | None:
        """How open phase `number` of a replayed trace was paced (None for other arrivals)."""
        if self.arrival != "trace":
            return None
        return paced_offsets(self._recorded_gaps(number, gaps), self.phases[number].duration_s)[1]

    def _recorded_gaps(self, number: int, gaps: list[float] | None) -> list[float]:
        """The recorded gap after each arrival of open phase `number` (the last: to the entry after it)."""
        if not gaps:
            raise ValueError("arrival 'trace' needs a stream replayed from a trace (with gaps)")
        phase = self.phases[number]
        first = self.first_position(number)
        return [gaps[(first + 1 + j) % len(gaps)] for j in range(arrivals_in(phase.rate, phase.duration_s))]

    def first_position(self, number: int) -> int:
        """The stream entry a measured phase starts at: after the warm-up and the arrivals of every
        open phase before it (a closed phase serves what it can, so it only ever comes last)."""
        position = self.warmup_requests
        for phase in self.phases[:number]:
            if phase.mode != "open":
                raise ValueError("a closed phase must be the last phase")
            position += arrivals_in(phase.rate, phase.duration_s)
        return position

    # -- signals between the driver and the locust processes ---------------------------------
    def signal(self, name: str) -> Path:
        return Path(self.signal_dir) / name

    def send(self, name: str, payload: dict[str, Any] | None = None) -> None:
        path = self.signal(name)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(msgspec.json.encode(payload or {}))
        os.replace(partial, path)

    def wait_for(self, name: str, deadline: float) -> dict[str, Any]:
        """The payload of a signal once it exists; TimeoutError after `deadline` (monotonic)."""
        path = self.signal(name)
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {name!r} signal by the deadline")
            time.sleep(SIGNAL_POLL_S)
        data: dict[str, Any] = msgspec.json.decode(path.read_bytes())
        return data


def generator_environment(mailbox: Path, index: int, processes: int) -> dict[str, str]:
    """What the driver tells a locust process when it starts it."""
    return {MAILBOX_ENV: str(mailbox), INDEX_ENV: str(index), PROCESSES_ENV: str(processes)}


class Mailbox:
    """The reading end of a mailbox: each run once, and the file read only when it changed (polling it
    costs a stat)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stamp: int | None = None
        self.seen: set[str] = set()

    def new_run(self) -> LoadSettings | None:
        try:
            stamp = self.path.stat().st_mtime_ns
        except OSError:
            return None
        if stamp == self.stamp:
            return None
        settings = LoadSettings.read(self.path)
        if settings is None:
            return None
        self.stamp = stamp
        if settings.run_id in self.seen:
            return None
        self.seen.add(settings.run_id)
        return settings


def workers_status_path(mailbox: Path) -> Path:
    """Where a distributed generator's master says which workers are attached (beside its mailbox)."""
    return mailbox.with_name("workers.json")


def generator_identity() -> tuple[Path, int, int] | None:
    """The mailbox, this process's index and the number of processes, as the driver passed them; None
    in a process the driver did not start (a distributed worker, told everything by its master)."""
    if MAILBOX_ENV not in os.environ:
        return None
    return Path(os.environ[MAILBOX_ENV]), int(os.environ[INDEX_ENV]), int(os.environ[PROCESSES_ENV])


@dataclass
class KindRecord:
    """One kind of entry (reads, or writes) within one process's phase: successes, errors by kind
    (unsent and unfinished arrivals too) and its latency histogram."""

    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    hdr: str = ""


@dataclass
class PhaseRecord:
    """What one locust process recorded in one measured phase."""

    name: str
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # by kind: shed, http_<status>, exception name
    expected: int = 0  # open: arrivals due in the window
    sent: int = 0  # open: sent before the window closed
    unsent: int = 0  # open: due in the window, never sent (held back, or the generator fell behind)
    unfinished: int = 0  # open: sent, no answer by the time the phase settled
    late_starts: int = 0  # open: sent more than LATE_S after due without being held back (generator lag)
    held_back: int = 0  # open: had to wait for the outstanding-requests cap
    cpu_s: float = 0.0  # the process's own CPU time over the phase (read by the lab for a process on another machine)
    hdr: str = ""
    trace: list[tuple[float, float, str]] = field(default_factory=list)  # open: (due, latency, outcome) per arrival
    reads: KindRecord | None = None  # a phase with writes: its reads (GET) apart ...
    writes: KindRecord | None = None  # ... and its writes (POST /events)
    objective_ms: float | None = None  # the latency objective `good` was judged by (None: a part of before goodput)
    good: int = 0  # successes answered within objective_ms
    shed: int = 0  # outcomes that were shed answers (also in errors, as "shed")
    retries: int = 0  # extra attempts sent after shed answers
    retried_ok: int = 0  # entries that succeeded after at least one retry
    hdr_ok: str = ""  # the latency histogram of the successes ...
    hdr_shed: str = ""  # ... and of the shed answers
    hdr_shed_sent: str = ""  # the shed answers again, timed from their sending (the generator's lag apart)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PhaseRecord:
        kinds = {name: KindRecord(**data[name]) for name in ("reads", "writes") if data.get(name) is not None}
        return cls(**{**data, "reads": None, "writes": None, **kinds})


@dataclass
class LoadPart:
    """What one locust process recorded: warm-up counts and each measured phase."""

    index: int
    run_id: str = ""
    warmup_ok: int = 0
    warmup_errors: dict[str, int] = field(default_factory=dict)
    phases: list[PhaseRecord] = field(default_factory=list)
    failure: str = ""  # why the process gave up, if it did

    def write(self, path: Path) -> None:
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(msgspec.json.encode(asdict(self)))
        os.replace(partial, path)

    @classmethod
    def read(cls, path: Path) -> LoadPart:
        return cls.from_dict(msgspec.json.decode(path.read_bytes()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadPart:
        return cls(**{**data, "phases": [PhaseRecord.from_dict(p) for p in data["phases"]]})
