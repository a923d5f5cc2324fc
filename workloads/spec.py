"""Workload specs (TOML): the dataset to generate, the request mix, and the load to drive.

    name = "default"
    [dataset]   sizes and skew of the generated data (see workloads/dataset.py)
    [requests]  request mix, key popularity, cold users, stream seed and length
    [load]      measured phases (open: arrivals at a fixed rate, for latency; closed: N users without
                think time, for capacity), warm-up prefix, phase duration

A bad spec is rejected with the file, the key and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from servers.core.tomlcheck import Table, limits, read_dataclass, read_toml
from workloads.dataset import DatasetParams

SPECS_DIR = Path(__file__).resolve().parent / "specs"
DEFAULT_SPEC = SPECS_DIR / "default.toml"
POPULARITY = ("uniform", "zipfian", "hotspot")
LOAD_MODES = ("open+closed", "open", "closed")
ARRIVALS = ("poisson", "constant")


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
    cold_user_share: float = field(default=0.1, metadata=limits(0.0, 1.0))
    with_user_share: float = field(default=0.3, metadata=limits(0.0, 1.0))

    @classmethod
    def from_table(cls, table: Table) -> RequestMix:
        return read_dataclass(table, cls, {"item_services": _weights, "user_services": _weights})


@dataclass(frozen=True)
class LoadModel:
    """How load arrives (the `[load]` table).

    Every run first serves the stream's first `warmup_requests` (closed loop, `users` at a time), so
    that every variant starts its measurement with the same requests served and its caches in the
    same state. Then come the measured phases, `duration_s` each: `open` sends the next requests at
    `rate` per second (Poisson or constant arrivals), timing each from its due moment, for latency
    below saturation; `closed` keeps `users` requests in flight, for capacity.
    """

    mode: str = field(default="open+closed", metadata=limits(choices=LOAD_MODES))
    users: int = field(default=16, metadata=limits(1, 10_000))
    rate: float = field(default=15.0, metadata=limits(0.1, 1_000_000))
    arrival: str = field(default="poisson", metadata=limits(choices=ARRIVALS))
    max_outstanding: int = field(default=1000, metadata=limits(1, 100_000))
    processes: int = field(default=1, metadata=limits(1, 64))
    warmup_requests: int = field(default=300, metadata=limits(0, 10_000_000))
    duration_s: float = field(default=4.0, metadata=limits(0.5, 36_000))
    quick_warmup_requests: int = field(default=150, metadata=limits(0, 10_000_000))
    quick_duration_s: float = field(default=2.0, metadata=limits(0.5, 36_000))

    @classmethod
    def from_table(cls, table: Table) -> LoadModel:
        load = read_dataclass(table, cls)
        if load.users < load.processes:
            raise table.fail("users", f"must be at least processes ({load.processes}): every locust process needs a user")
        if "open" in load.phases and load.max_outstanding < load.processes:
            raise table.fail("max_outstanding", f"must be at least processes ({load.processes})")
        return load

    @property
    def phases(self) -> tuple[str, ...]:
        """The measured phases, in the order they run."""
        return tuple(self.mode.split("+"))

    def quick(self) -> LoadModel:
        return replace(self, warmup_requests=self.quick_warmup_requests, duration_s=self.quick_duration_s)


@dataclass(frozen=True)
class WorkloadSpec:
    path: str
    name: str
    dataset: DatasetParams
    requests: RequestMix
    load: LoadModel


def load_spec(path: Path = DEFAULT_SPEC) -> WorkloadSpec:
    top = Table(path, "", read_toml(path))
    spec = WorkloadSpec(
        path=str(path),
        name=top.string("name", Path(path).stem),
        dataset=DatasetParams.from_table(top.table("dataset", {})),
        requests=RequestMix.from_table(top.table("requests", {})),
        load=LoadModel.from_table(top.table("load", {})),
    )
    top.reject_unknown()
    return spec


def _weights(table: Table, name: str, default: dict[str, float]) -> dict[str, float]:
    """A table of service name -> positive weight."""
    sub = table.table(name, default)
    weights = {service: sub.number(service, low=0.0) for service in sub.data}
    if not weights or sum(weights.values()) <= 0:
        raise table.fail(name, "must give at least one service a positive weight")
    return weights
