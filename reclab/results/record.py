"""The run record: one typed, versioned structure per run, one JSON line of results.jsonl.

`RunRecord` is declared once here and read back through its type. `SCHEMA_VERSION` is written into
every line. Schema 3 keeps what every run of a bench shares (`BenchInfo`: the workload, the code, the
machine, the load) once, on a line of its own (`"kind": "bench"`), and each record names its bench by
`bench_id`; schema 2 repeated it in every record, and schema 1 (the flat layout of reclab 0.1) spread
it among the run's own fields. Lines of schemas 1 and 2 are read into the same records
(`reclab.results.upgrade`, `reclab.results.file`), and any other version is refused.

A record's `kind` says which of its optional fields it may have (`RunRecord.misfit`): only a ceiling
has a `route`, only a capacity step a `step`, only a capacity result a `capacity` (and no phases).

A run has a warm-up (a fixed prefix of the request stream) and one or more measured phases: `open`
(arrivals at a fixed rate; latency below saturation) and `closed` (a fixed number of requests in
flight; capacity). Each phase has its own window, counts, latency histogram, server counters, CPU
accounting and the name of what limited it. A phase whose stream entries included writes
(POST /events) also keeps its reads and its writes apart (`reads`, `writes`); a record without them
(older ones too) had no writes.

Under overload a phase also says how much useful work got through: `goodput_rps` (successes answered
within the run's `objective_ms`, per second of the window), `shed` (answers refused by the server's
admission control, error kind "shed"), the latency of the successes and of the shed answers apart,
and with clients that retry, the `retries` sent and the entries that succeeded after one. Records
from before these fields read with their defaults (no objective, no goodput, nothing shed).

A run of a bench that counts instructions (`reclab bench --measure instructions|both`) has
`instructions`: what its server executed, under valgrind, over a fixed slice of the stream
(`InstructionCount`); a run that only counted them has no timed phases.
"""

from __future__ import annotations

from typing import Any

import msgspec

from reclab.results.config import RunConfig
from reclab.results.faults import WriteTally
from workloads.spec import LoadModel

SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
KINDS = ("run", "warmup", "ceiling", "target", "capacity_step", "capacity")  # target: a server the lab did not start
MEASURED = ("run", "warmup", "ceiling", "target", "capacity_step")  # the kinds with a warm-up and phases
FIELD_KINDS = {  # a field only some kinds have -> those kinds
    "route": ("ceiling",),
    "step": ("capacity_step",),
    "capacity": ("capacity",),
    "fault": ("run", "warmup", "capacity_step"),  # a variant's fault: a ceiling or a target has none
    "warmup": MEASURED,
    "phases": MEASURED,
    "instructions": ("run",),
}
KIND_NEEDS = {"capacity_step": "step", "capacity": "capacity"}  # a kind -> the field its records always have
EXCERPT_CHARS = 300  # a record's string (an error, a name) as messages and reports show it, at most


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """`text` cut to about `limit` characters: its start and its end (where an error's last words are),
    with an ellipsis and the length it had between them."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    return f"{text[:head]} … ({len(text):,} characters) … {text[head - limit :]}"


class Struct(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=False):
    """Base of the record's parts: fields by keyword, immutable; unknown fields are ignored."""


class Latency(Struct, kw_only=True, frozen=True):
    """Percentiles of one phase's latency histogram, in microseconds."""

    p50: float
    p90: float
    p99: float
    p99_9: float = msgspec.field(name="p99.9")
    max: float
    mean: float = 0.0


class ServerTiming(Struct, kw_only=True, frozen=True):
    """Mean Server-Timing per request over the window, in ms."""

    db: float = 0.0
    cache: float = 0.0
    app: float = 0.0
    total: float = 0.0


class Arrivals(Struct, kw_only=True, frozen=True):
    """Open loop: every arrival due in the window is either sent or unsent (sent + unsent = expected)."""

    expected: int
    sent: int
    unsent: int


class CpuRecord(Struct, kw_only=True, frozen=True):
    """What the CPUs did over a phase: each process's CPU seconds, each core's busy and stolen share."""

    seconds: float
    processes: dict[str, float] = {}
    core_busy: dict[int, float] = {}
    core_steal: dict[int, float] = {}

    def share(self, name: str) -> float:
        return self.processes.get(name, 0.0) / self.seconds if self.seconds > 0 else 0.0


class ShardLoad(Struct, kw_only=True, frozen=True):
    """One database shard's share of a phase: operations and the time they took as the server saw
    them, round trips (one per operation: every read goes to one shard), and the shard process's CPU
    (None for a server the lab did not start)."""

    ops: int
    round_trips: int
    time_ms: float
    cpu_s: float | None = None


class ReplayPace(Struct, kw_only=True, frozen=True):
    """An open phase replaying a trace: how its recorded gaps were paced to the phase's rate
    (workloads.replay_pace)."""

    speedup: float | None  # recorded seconds per replayed second; None: paced evenly (no recorded time)
    recorded_s: float  # the log time its arrivals covered
    pauses_shortened: int = 0  # recorded pauses cut to the longest gap a window allows


class HistoryCost(Struct, kw_only=True, frozen=True):
    """The requests of a phase whose users' histories fall in one size bucket (servers.core.history):
    how many, and per request the documents the database returned and the server's database, app
    (outside any database or cache call) and total time."""

    history: str  # none | 0 | 1-9 | 10-29 | 30-99 | 100-299 | 300-999 | 1000+
    requests: int
    docs_per_request: float
    db_ms: float
    app_ms: float
    total_ms: float


class AdmissionLoad(Struct, kw_only=True, frozen=True):
    """What the server's admission control did over a phase (its /metrics): requests admitted, shed
    (refused with 503 `overloaded`; `shed_late` after waiting), their mean wait for a place, and the
    limit in force at the phase's end (summed over workers; the adaptive one moves)."""

    mode: str  # fixed | adaptive
    admitted: int
    shed: int
    shed_late: int = 0
    queue_ms_per_admitted: float | None = None
    limit: int


class Traffic(Struct, kw_only=True, frozen=True):
    """One kind of entry within a phase, reads (GET) or writes (POST /events): every entry of the kind
    accounted for (`requests` = ok + errors, open-loop unsent and unfinished arrivals among the errors),
    successes per second of the window, latency percentiles (from its own HdrHistogram) and errors."""

    requests: int
    ok: int
    rps: float
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    errors: dict[str, int] = {}
    hdr: str = ""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class PhaseResult(Struct, kw_only=True, frozen=True):
    """One measured phase of a run."""

    name: str  # as the spec names it (open, closed, latency, cost, capacity, ...)
    mode: str = "closed"  # open | closed
    window_s: float
    started: float = 0.0  # time.monotonic() at the window's start (to line it up with other recordings)
    nominal_rps: float | None = None  # open: the phase's rate as the spec gives it
    offered_rps: float | None = None  # open: arrivals due in the window per second (older records: the nominal rate)
    replay: ReplayPace | None = None  # open, replaying a trace: how its recorded gaps were paced
    arrivals: Arrivals | None = None  # open
    ok: int
    errors: dict[str, int] = {}  # by kind; open loop: unsent and unfinished arrivals too
    unfinished: int = 0  # open: sent, unanswered when the phase settled
    late_starts: int = 0  # open: sent late without being held back (the generator lagged)
    held_back: int = 0  # open: waited for the outstanding-requests cap
    throughput_rps: float  # successes per second of the window
    latency_us: Latency | None = None
    hdr: str = ""
    served: int = 0  # requests the server answered over the phase (its /metrics)
    server_cpu_ms_per_request: float | None = None  # the server's CPU over the window, less its reference work, per request
    pace_us: float | None = None  # CPU µs of one run of the server's reference work (servers.core.pace) over the window
    db_ops_per_request: float = 0.0
    db_round_trips_per_request: float = 0.0
    db_docs_per_request: float | None = None  # documents the database returned (older records: not counted)
    db_bytes_per_request: float | None = None  # their BSON bytes, from the calls measured (servers.core.documents)
    db_examined_per_request: float | None = None  # documents the engine examined, where it says (serverStatus)
    cache_hit_ratio: float | None = None
    server_timing_ms: ServerTiming = msgspec.field(default_factory=ServerTiming)
    cpu: CpuRecord
    utilisation: dict[str, float] = {}  # resource -> share of what it can use
    bottleneck: str = "unknown"  # server | database | cache | generator | proxy | shared-core | none
    flags: list[str] = []
    added_delay_ms: dict[str, float] = {}  # delay runs: the added round trip measured during this phase
    unknown: list[str] = []  # fields the lab could not read (a --target server's CPU and counters): left empty
    shards: list[ShardLoad] = []  # a sharded database: each shard's load, in shard order
    imbalance: float | None = None  # the busiest shard's operations over the mean shard's
    by_history: list[HistoryCost] = []  # by the size of the requests' users' histories
    reads: Traffic | None = None  # a phase with writes: its reads apart (None: it had no writes) ...
    writes: Traffic | None = None  # ... and its writes; with `reads`, they add up to the phase's totals
    objective_ms: float | None = None  # goodput's latency objective (None: older records, not judged)
    goodput_rps: float | None = None  # successes within objective_ms (open: from the due moment) per second of the window
    good: int = 0  # those successes
    shed: int = 0  # outcomes that were answers refused by admission control (also in `errors`, as "shed")
    latency_ok_us: Latency | None = None  # the successes' latency alone ...
    hdr_ok: str = ""  # ... and its histogram
    latency_shed_us: Latency | None = None  # the shed answers' latency alone (open: from their due moment) ...
    latency_shed_sent_us: Latency | None = None  # ... and from their sending: how fast the server refused
    offered_multiple: float | None = None  # overload runs: the offered rate as a multiple of the variant's capacity
    retries: int = 0  # clients that retry: extra attempts sent after shed answers
    retried_ok: int = 0  # entries that succeeded after at least one retry
    admission: AdmissionLoad | None = None  # a server with admission control: what it admitted and shed

    @property
    def has_writes(self) -> bool:
        return self.writes is not None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class Warmup(Struct, kw_only=True, frozen=True):
    requests: int
    ok: int
    errors: dict[str, int] = {}


class SpecRef(Struct, kw_only=True, frozen=True):
    path: str
    name: str


class Seeds(Struct, kw_only=True, frozen=True):
    dataset: int
    requests: int
    order: int = 0  # the order of the variants within each repeat is drawn from this


class Engines(Struct, kw_only=True, frozen=True):
    mongo: str
    redis: str


class Cores(Struct, kw_only=True, frozen=True):
    server: list[int]
    others: list[int]


class BenchInfo(Struct, kw_only=True, frozen=True):
    """What every run of one bench shares: the workload, the code, the machine."""

    bench_id: str
    spec: SpecRef
    seed: Seeds
    dataset_hash: str
    stream_hash: str
    versions: dict[str, str]
    commit: str
    machine: dict[str, Any]
    engines: Engines
    load: LoadModel
    quick: bool = False
    matrix: str = "ofat"
    repeats: int = 1
    cores: Cores | None = None
    shards: int = 1  # MongoDB servers the data was spread over
    partition: str = "modulo"  # how keys picked their shard (the spec's [shards] partition)
    rules: str = ""  # the rule file the servers ran, and its version (older records: not recorded)
    generator: str = "local"  # local: locust processes the bench started; distributed: `reclab loadgen` workers
    target: str | None = None  # --target: the base URL of a server the lab did not start
    limits: dict[str, float] | None = None  # the servers' limits when the bench set them (None: their defaults)
    measure: str = "time"  # time: timed phases | instructions: counted under valgrind only | both
    window_requests: int | None = None  # a bench that counts instructions: the requests of each run's window


class FaultRecord(Struct, kw_only=True, frozen=True):
    """A fault injected for an interval of an open-loop window, and what the requests saw. Times are
    seconds from the window's start; `sent`/`answered`/`lost` count the window's arrivals (lost: sent
    and never answered, must be 0); a request counts `during` the fault when it was due inside it."""

    name: str
    start_s: float
    end_s: float
    sent: int
    answered: int
    unsent: int = 0
    by_status: dict[str, int] = {}
    lost: int
    p99_during_ms: float | None = None
    p99_after_ms: float | None = None
    recovery_s: float | None = None  # from the fault's end until the last failed or slow request was over
    writes: WriteTally | None = None  # the write probe's events during the run (reclab.run.write_probe)


class CapacityStep(Struct, kw_only=True, frozen=True):
    """One step of a capacity search: an open-loop window at one arrival rate, judged on the objective."""

    rate: float  # arrivals per second offered
    stage: str  # grow | bisect | confirm (the best passing rate again) | above (1.25 x that rate)
    passed: bool
    broke: list[str] = []  # what broke the objective (p99, errors), empty when it passed
    slo_p99_ms: float
    max_error_rate: float


class CapacityResult(Struct, kw_only=True, frozen=True):
    """A variant's capacity at the objective: the highest arrival rate whose window met it."""

    capacity_rps: float | None  # None: not even the lowest rate tried met the objective
    confirmed: bool  # its confirmation window met the objective and the one at `above_rps` did not
    above_rps: float | None  # the confirmation rate above the capacity (1.25 x)
    p50_ms: float | None = None  # at the capacity, from its confirmation window
    p99_ms: float | None = None
    p99_9_ms: float | None = None
    broke_above: list[str] = []  # what broke first above it
    limited_by: str = "unknown"  # the busiest saturated resource above it, or "nothing saturated"
    above_utilisation: dict[str, float] = {}  # each resource's share of what it can use, above it
    at_least: bool = False  # True unless the server saturated first above it: the server's own capacity is higher
    steps: int = 0
    slo_p99_ms: float
    max_error_rate: float


class InstructionCount(Struct, kw_only=True, frozen=True):
    """The instructions a run's server executed over a fixed slice of the stream, counted by valgrind
    (callgrind, switched on in every server process only for that window: `reclab.run.instructions`)."""

    total: int  # every server process (master, workers, all their threads), inside the window
    requests: int  # answered in the window (any HTTP status)
    errors: int = 0  # answered with a status of 400 or more, or not answered
    start: int  # the window's first stream position (after the warm-up)
    connections: int  # keep-alive connections the slice was sent over, in stream order
    processes: dict[str, int] = {}  # process id -> its instructions in the window
    seconds: float = 0.0  # the window's wall time (under valgrind: tens of times slower than native)
    tool: str = ""  # valgrind's version and tool

    @property
    def per_request(self) -> float | None:
        return self.total / self.requests if self.requests else None


class RunRecord(Struct, kw_only=True, frozen=True):
    """One record of results.jsonl: a line of its own, naming its bench (described on a line before it)."""

    schema: int = SCHEMA_VERSION  # as its line said (schema 1 reads as 2: its layout)
    kind: str  # one of KINDS
    key: str = ""  # the variant's key; the A/A copy of the baseline has its own
    role: str = "variant"  # baseline | aa (the baseline again, under another label) | variant
    config: RunConfig
    route: str | None = None  # ceiling: the route it loads instead of the recommender
    repeat: int = 0
    order: int = 0  # position within its repeat
    sequence: int = 0  # position in the whole bench
    bench: BenchInfo  # its line names it by `bench_id` (schema 3): the description is a line of its own
    status: str = "ok"  # ok | failed
    error: str | None = None
    flags: list[str] = []
    started_at: float = 0.0
    wall_s: float = 0.0
    machine_speed: float | None = None
    server_loop: str | None = None  # the event loop the server reported running on
    added_delay_idle_ms: dict[str, float] = {}  # delay runs: the added round trip measured before the load
    warmup: Warmup | None = None
    phases: list[PhaseResult] = []
    fault: FaultRecord | None = None  # the fault matrix: the fault injected and what the requests saw
    step: CapacityStep | None = None  # capacity_step: the rate and the objective's verdict
    capacity: CapacityResult | None = None  # capacity: the variant's result
    instructions: InstructionCount | None = None  # a run of a bench that counts instructions

    def __post_init__(self) -> None:
        if (misfit := self.misfit()) is not None:
            raise ValueError(misfit)

    def misfit(self, *, complete: bool = False) -> str | None:
        """What in the record does not fit its kind, in a few words naming the field (None: it fits).
        `complete`: also a field its kind always has once recorded, missing (a record is built without
        it, then completed)."""
        if self.kind not in KINDS:
            return f"kind {self.kind!r} is none of {', '.join(KINDS)}"
        for name, kinds in FIELD_KINDS.items():
            if self.kind not in kinds and getattr(self, name):
                return f"`{name}` does not fit a record of kind {self.kind!r} (only {', '.join(kinds)} records have one)"
        needed = KIND_NEEDS.get(self.kind)
        if complete and needed is not None and getattr(self, needed) is None:
            return f"a record of kind {self.kind!r} needs `{needed}`"
        return None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and (bool(self.phases) or self.instructions is not None)

    @property
    def run_key(self) -> str:
        """Identifies a run within its bench, for --resume."""
        return f"{self.kind}:{self.key}#{self.repeat}"

    def phase(self, name: str) -> PhaseResult | None:
        return next((p for p in self.phases if p.name == name), None)
