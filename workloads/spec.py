"""Workload specs (TOML): the dataset to generate, the request mix, and the load to drive.

    name = "default"
    [dataset]   sizes and skew of the generated data (see workloads/dataset.py)
    [requests]  request mix, key popularity, cold users, writes, stream seed and length
    [load]      measured phases (open: arrivals at a fixed rate, for latency; closed: N users without
                think time, for capacity), warm-up prefix, phase duration, goodput's latency
                objective, clients that retry a shed request
    [shards]    partition = "modulo" | "hashed": how keys pick their shard when the data is spread
                over several MongoDB servers (servers/core/shards.py)

A bad spec is rejected with the file, the key and the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from servers.core.shards import METHODS
from servers.core.tomlcheck import Table, limits, read_dataclass, read_toml
from workloads.dataset import DatasetParams

SPECS_DIR = Path(__file__).resolve().parent / "specs"
DEFAULT_SPEC = SPECS_DIR / "default.toml"
SUPERNODE_SPEC = SPECS_DIR / "supernode.toml"
POPULARITY = ("uniform", "zipfian", "hotspot")
USER_POPULARITY = ("popularity", "activity")  # users drawn like items, or in proportion to their events
SOURCES = ("generated", "trace")  # the stream drawn from the mix, or the dataset's events replayed
ORDERS = ("time", "sample")  # a trace replayed in time order at its recorded gaps, or sampled with the seed
LOAD_MODES = ("open+closed", "open", "closed")
PHASE_MODES = ("open", "closed")
ARRIVALS = ("poisson", "constant", "trace")  # trace: at the stream's recorded gaps


@dataclass(frozen=True)
class RequestMix:
    """What the request stream asks for (the `[requests]` table)."""

    seed: int = field(default=1234, metadata=limits(low=0))
    count: int = field(default=20_000, metadata=limits(1, 10_000_000))
    user_share: float = field(default=0.5, metadata=limits(0.0, 1.0))
    item_services: dict[str, float] = field(default_factory=lambda: {"groceries/fruit": 1.0})
    user_services: dict[str, float] = field(default_factory=lambda: {"home/for-you": 1.0})
    popularity: str = field(default="zipfian", metadata=limits(choices=POPULARITY))
    zipf_constant: float = field(default=0.99, metadata=limits(0.0, 5.0))
    hotspot_fraction: float = field(default=0.01, metadata=limits(0.0001, 1.0))
    hotspot_share: float = field(default=0.9, metadata=limits(0.0, 1.0))
    # how users with a history are drawn: by `popularity` as items are, or in proportion to their events
    # (`activity`: the users who act most come back most)
    user_popularity: str = field(default="popularity", metadata=limits(choices=USER_POPULARITY))
    cold_user_share: float = field(default=0.1, metadata=limits(0.0, 1.0))
    with_user_share: float = field(default=0.3, metadata=limits(0.0, 1.0))
    supernode_request_share: float = field(default=0.0, metadata=limits(0.0, 1.0))  # item requests for a supernode
    # source = "trace": each of the dataset's events (in time order, or sampled) becomes a request: a
    # personalised one for its user (a `user_share` of them), else one for its item naming the user.
    # In time order, the stream starts at the event at position `start`, or at the first event at or
    # after `start_time` (unix seconds or ISO 8601), and each open phase replays its entries at their
    # recorded gaps, paced to its rate (workloads.replay_pace).
    source: str = field(default="generated", metadata=limits(choices=SOURCES))
    order: str = field(default="time", metadata=limits(choices=ORDERS))
    start: int = field(default=0, metadata=limits(low=0))
    start_time: float = 0.0  # unix seconds; 0: not given
    # Writes (POST /events, workloads.writes). A generated stream: each entry is a write with probability
    # `write_share`, an event drawn like the dataset's (workloads.stream.build_stream). A trace replayed in
    # time order: each interaction is written at its recorded moment (`trace_writes`) and a
    # `read_after_share` of them are followed at the same moment by a read for its user or item; `count`
    # counts interactions, every entry (write or read) is an arrival. `trace_writes = false`, and
    # `order = "sample"`, replay each interaction as a read only.
    write_share: float = field(default=0.0, metadata=limits(0.0, 1.0))
    trace_writes: bool = True
    read_after_share: float = field(default=0.5, metadata=limits(0.0, 1.0))

    @classmethod
    def from_table(cls, table: Table) -> RequestMix:
        if "speedup" in table.data:
            raise table.fail("speedup", "replays are paced per window to each open phase's `rate` now; delete this key")
        special: dict[str, Callable[[Table, str, Any], Any]] = {
            "item_services": _weights, "user_services": _weights, "start_time": _moment, "trace_writes": _boolean,
        }  # fmt: skip
        mix = read_dataclass(table, cls, special)
        if mix.start and mix.start_time:
            raise table.fail("start_time", "give either start (a position) or start_time, not both")
        if (mix.start or mix.start_time) and (mix.source, mix.order) != ("trace", "time"):
            where = "start" if mix.start else "start_time"
            raise table.fail(where, 'applies to a trace replayed in time order (source = "trace")')
        _check_writes(table, mix)
        return mix

    @property
    def replays_writes(self) -> bool:
        """A trace replayed in time order whose interactions are sent as writes."""
        return self.source == "trace" and self.order == "time" and self.trace_writes


def _check_writes(table: Table, mix: RequestMix) -> None:
    """Reject write settings that do not apply to the stream's source and order."""
    if "write_share" in table.data and mix.source != "generated":
        raise table.fail("write_share", "applies to a generated stream (a trace writes its interactions: trace_writes)")
    for name in ("trace_writes", "read_after_share"):
        if name in table.data and (mix.source, mix.order) != ("trace", "time"):
            raise table.fail(name, 'applies to a trace replayed in time order (source = "trace", order = "time")')
    if "read_after_share" in table.data and not mix.trace_writes:
        raise table.fail("read_after_share", "applies to a replay with writes (trace_writes = true)")


@dataclass(frozen=True)
class Phase:
    """One measured phase of a run (a `[[load.phases]]` table): `open` sends arrivals at `rate` per
    second (Poisson or constant), timing each from its due moment; `closed` keeps `users` requests in
    flight back to back."""

    name: str = field(default="", metadata=limits())
    mode: str = field(default="open", metadata=limits(choices=PHASE_MODES))
    rate: float = field(default=15.0, metadata=limits(0.1, 1_000_000))
    duration_s: float = field(default=4.0, metadata=limits(0.5, 36_000))
    quick_duration_s: float = field(default=2.0, metadata=limits(0.5, 36_000))
    drain_s: float = field(default=0.3, metadata=limits(0.0, 600))  # open: time after the window for its requests to end

    @classmethod
    def from_table(cls, table: Table) -> Phase:
        phase = read_dataclass(table, cls)
        if not phase.name:
            raise table.fail("name", "is required")
        return phase


@dataclass(frozen=True)
class LoadModel:
    """How load arrives (the `[load]` table).

    Every run first serves the stream's first `warmup_requests` (closed loop, `users` at a time), so
    that every variant starts its measurement with the same requests served and its caches in the
    same state. Then come the measured phases, in order, on fixed stream positions; a closed phase
    serves as many requests as it can, so it can only come last. The phases are `[[load.phases]]`
    tables, or for one or two phases the shorthand `mode = "open" | "closed" | "open+closed"` with
    `rate`, `duration_s` and `quick_duration_s`.

    Goodput counts the answers that succeeded within `objective_ms` of their due moment (open) or of
    their send (closed). Clients that retry (`retry_shed`): an entry refused by admission control (a
    503 whose body starts `{"error":"overloaded"`) is sent again after the reply's Retry-After, up to
    `max_retries` times.
    """

    users: int = field(default=16, metadata=limits(1, 10_000))
    arrival: str = field(default="poisson", metadata=limits(choices=ARRIVALS))
    max_outstanding: int = field(default=1000, metadata=limits(1, 100_000))
    processes: int = field(default=1, metadata=limits(1, 64))
    warmup_requests: int = field(default=300, metadata=limits(0, 10_000_000))
    quick_warmup_requests: int = field(default=150, metadata=limits(0, 10_000_000))
    phases: tuple[Phase, ...] = (Phase("open", "open"), Phase("closed", "closed"))
    objective_ms: float = field(default=100.0, metadata=limits(0.1, 600_000))  # goodput: an answer's latency at most
    retry_shed: bool = False  # clients that retry: a shed entry is sent again after the reply's Retry-After
    max_retries: int = field(default=3, metadata=limits(0, 10))  # retry_shed: extra attempts of one entry at most

    @classmethod
    def from_table(cls, table: Table) -> LoadModel:
        load = read_dataclass(table, cls, {"phases": _phases, "retry_shed": _boolean})
        if "max_retries" in table.data and not load.retry_shed:
            raise table.fail("max_retries", "applies to clients that retry (retry_shed = true)")
        if load.users < load.processes:
            raise table.fail("users", f"must be at least processes ({load.processes}): every locust process needs a user")
        if any(p.mode == "open" for p in load.phases) and load.max_outstanding < load.processes:
            raise table.fail("max_outstanding", f"must be at least processes ({load.processes})")
        return load

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(p.mode for p in self.phases)

    def quick(self) -> LoadModel:
        phases = tuple(replace(p, duration_s=p.quick_duration_s) for p in self.phases)
        return replace(self, warmup_requests=self.quick_warmup_requests, phases=phases)


SHORTHAND = ("mode", "rate", "duration_s", "quick_duration_s")


def _phases(table: Table, name: str, default: tuple[Phase, ...]) -> tuple[Phase, ...]:
    """`[[load.phases]]`, or the shorthand `mode`/`rate`/`duration_s`/`quick_duration_s` (not both)."""
    shorthand = {key: table.data[key] for key in SHORTHAND if key in table.data}
    if name in table.data:
        if shorthand:
            raise table.fail(next(iter(shorthand)), "give either [[load.phases]] or the shorthand mode/rate/duration_s, not both")
        entries = table.array(name)
        phases = tuple(Phase.from_table(Table(table.path, f"{table.key(name)}[{i}]", e)) for i, e in enumerate(entries))
    else:
        mode = table.string("mode", "+".join(p.mode for p in default), choices=LOAD_MODES)
        first = default[0]
        timing = {
            "rate": table.number("rate", first.rate, low=0.1, high=1_000_000),
            "duration_s": table.number("duration_s", first.duration_s, low=0.5, high=36_000),
            "quick_duration_s": table.number("quick_duration_s", first.quick_duration_s, low=0.5, high=36_000),
        }
        phases = tuple(Phase(name=m, mode=m, **timing) for m in mode.split("+"))
    if not phases:
        raise table.fail(name, "must hold at least one phase")
    if any(p.mode == "closed" for p in phases[:-1]):
        raise table.fail(name, "a closed phase serves as many requests as it can, so it can only be the last phase")
    if len({p.name for p in phases}) < len(phases):
        raise table.fail(name, "phase names must differ")
    return phases


@dataclass(frozen=True)
class WorkloadSpec:
    path: str
    name: str
    dataset: DatasetParams
    requests: RequestMix
    load: LoadModel
    partition: str = "modulo"  # how keys pick their shard (servers.core.shards.METHODS)


def load_spec(path: Path = DEFAULT_SPEC) -> WorkloadSpec:
    top = Table(path, "", read_toml(path))
    spec = WorkloadSpec(
        path=str(path),
        name=top.string("name", Path(path).stem),
        dataset=DatasetParams.from_table(top.table("dataset", {})),
        requests=RequestMix.from_table(top.table("requests", {})),
        load=LoadModel.from_table(top.table("load", {})),
        partition=_partition(top.table("shards", {})),
    )
    top.reject_unknown()
    if spec.load.arrival == "trace" and (spec.requests.source, spec.requests.order) != ("trace", "time"):
        raise top.fail("load.arrival", 'is "trace" only for a stream replayed in time order ([requests] source = "trace")')
    return spec


def _partition(table: Table) -> str:
    method = table.string("partition", "modulo", choices=METHODS)
    table.reject_unknown()
    return method


def _moment(table: Table, name: str, default: float) -> float:
    """A moment as unix seconds: a number, an ISO 8601 string or a TOML date-time (no zone: UTC)."""
    value: Any = table.raw(name, default)
    if isinstance(value, bool):
        raise table.fail(name, f"must be unix seconds or an ISO 8601 date-time, got {value!r}")
    if isinstance(value, int | float):
        moment = float(value)
    else:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise table.fail(name, f"must be unix seconds or an ISO 8601 date-time, got {value!r}") from None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime):
            raise table.fail(name, f"must be unix seconds or an ISO 8601 date-time, got {value!r}")
        moment = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if moment < 0:
        raise table.fail(name, f"must not be before 1970, got {value!r}")
    return moment


def _boolean(table: Table, name: str, default: bool) -> bool:
    value = table.raw(name, default)
    if not isinstance(value, bool):
        raise table.fail(name, f"must be true or false, got {value!r}")
    return value


def _weights(table: Table, name: str, default: dict[str, float]) -> dict[str, float]:
    """A table of service name -> positive weight."""
    sub = table.table(name, default)
    weights = {service: sub.number(service, low=0.0) for service in sub.data}
    if not weights or sum(weights.values()) <= 0:
        raise table.fail(name, "must give at least one service a positive weight")
    return weights
