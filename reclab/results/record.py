"""The run record: one typed, versioned structure per run, written as one JSON line.

`RunRecord` is declared once here and read back through its type. `SCHEMA_VERSION` is written into
every line; lines of schema 1 (the flat layout of reclab 0.1) are converted on reading, and any other
version is refused (see `reclab.results.file`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from reclab.results.config import RunConfig
from workloads.spec import LoadModel

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)


class Struct(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=False):
    """Base of the record's parts: fields by keyword, unknown fields of newer minor additions ignored."""


class Latency(Struct, kw_only=True, frozen=True):
    """Percentiles of one run's latency histogram, in microseconds."""

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


class SpecRef(Struct, kw_only=True, frozen=True):
    path: str
    name: str


class Seeds(Struct, kw_only=True, frozen=True):
    dataset: int
    requests: int


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


class Measurement(Struct, kw_only=True, frozen=True):
    """What one successful run measured in its window."""

    throughput_rps: float
    requests_ok: int
    requests_sent: int
    late_starts: int = 0
    unfinished: int = 0
    window_s: float
    latency_us: Latency | None = None
    errors: dict[str, int] = {}
    error_count: int = 0
    cpu_s: dict[str, float] = {}
    generator_cpu_share: float = 0.0
    server_cpu_ms_per_request: float
    served_in_window: int
    db_ops_per_request: float
    db_round_trips_per_request: float
    cache_hit_ratio: float | None = None
    server_timing_ms: ServerTiming = msgspec.field(default_factory=ServerTiming)
    server_loop: str | None = None
    hdr: str = ""


class RunRecord(Struct, kw_only=True, frozen=True):
    """One line of results.jsonl."""

    schema: int = SCHEMA_VERSION
    kind: str  # run | warmup | ceiling
    key: str = ""
    config: RunConfig
    route: str | None = None  # ceiling: the route it loads instead of the recommender
    repeat: int = 0
    order: int = 0  # position within its repeat
    sequence: int = 0  # position in the whole bench
    bench: BenchInfo
    status: str = "ok"  # ok | failed
    error: str | None = None
    flags: list[str] = []
    started_at: float = 0.0
    wall_s: float = 0.0
    machine_speed: float | None = None
    added_delay_ms: dict[str, float] = {}
    measured: Measurement | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.measured is not None

    @property
    def run_key(self) -> str:
        """Identifies a run within its bench, for --resume."""
        return f"{self.kind}:{self.key}#{self.repeat}"


BENCH_FIELDS = tuple(BenchInfo.__struct_fields__)
MEASURED_FIELDS = tuple(Measurement.__struct_fields__)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A line of schema 1 (flat: bench and measured fields beside the run's own) in the current layout."""
    if data.get("schema") != 1:
        return data
    out = {k: v for k, v in data.items() if k not in BENCH_FIELDS and k not in MEASURED_FIELDS and k != "schema"}
    out["schema"] = SCHEMA_VERSION
    out["bench"] = {k: data[k] for k in BENCH_FIELDS if k in data}
    out["bench"].setdefault("bench_id", "")
    config = dict(data.get("config") or {})
    if "route" in config:  # schema 1 ceiling lines: {"framework": ..., "route": ...}
        out["route"] = config.pop("route")
        config["cache"] = "none"
    out["config"] = config
    if data.get("status") == "ok" and "throughput_rps" in data:
        measured = {k: data[k] for k in MEASURED_FIELDS if k in data}
        if not measured.get("latency_us"):
            measured["latency_us"] = None
        out["measured"] = measured
    return out
