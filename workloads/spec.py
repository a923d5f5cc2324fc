"""Workload specs (TOML): the dataset to generate, the request mix, and the load to drive.

    name = "default"
    [dataset]   sizes and skew of the generated data (see workloads/dataset.py)
    [requests]  request mix, key popularity, cold users, stream seed and length
    [load]      arrival model (closed: N users; open: a target rate), warm-up, duration

A bad spec is rejected with the file, the key and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from workloads.dataset import DatasetParams
from workloads.tomlcheck import Table, read_toml

SPECS_DIR = Path(__file__).resolve().parent / "specs"
DEFAULT_SPEC = SPECS_DIR / "default.toml"
POPULARITY = ("uniform", "zipfian", "hotspot")
LOAD_MODES = ("closed", "open")
ARRIVALS = ("poisson", "constant")


@dataclass(frozen=True)
class RequestMix:
    """What the request stream asks for (the `[requests]` table)."""

    seed: int = 1234
    count: int = 20_000
    user_share: float = 0.5
    item_services: dict[str, float] = field(default_factory=lambda: {"groceries/fruit": 1.0})
    user_services: dict[str, float] = field(default_factory=lambda: {"home/for-you": 1.0})
    popularity: str = "zipfian"
    zipf_constant: float = 0.99
    hotspot_fraction: float = 0.01
    hotspot_share: float = 0.9
    cold_user_share: float = 0.1
    with_user_share: float = 0.3

    @classmethod
    def from_table(cls, table: Table) -> RequestMix:
        d = cls()
        mix = cls(
            seed=table.integer("seed", d.seed, low=0),
            count=table.integer("count", d.count, low=1, high=10_000_000),
            user_share=table.number("user_share", d.user_share, low=0.0, high=1.0),
            item_services=_weights(table, "item_services", d.item_services),
            user_services=_weights(table, "user_services", d.user_services),
            popularity=table.string("popularity", d.popularity, choices=POPULARITY),
            zipf_constant=table.number("zipf_constant", d.zipf_constant, low=0.0, high=5.0),
            hotspot_fraction=table.number("hotspot_fraction", d.hotspot_fraction, low=0.0001, high=1.0),
            hotspot_share=table.number("hotspot_share", d.hotspot_share, low=0.0, high=1.0),
            cold_user_share=table.number("cold_user_share", d.cold_user_share, low=0.0, high=1.0),
            with_user_share=table.number("with_user_share", d.with_user_share, low=0.0, high=1.0),
        )
        table.reject_unknown()
        return mix


@dataclass(frozen=True)
class LoadModel:
    """How load arrives (the `[load]` table)."""

    mode: str = "closed"
    users: int = 32
    rate: float = 300.0
    arrival: str = "poisson"
    processes: int = 1
    warmup_s: float = 5.0
    duration_s: float = 15.0
    quick_warmup_s: float = 1.5
    quick_duration_s: float = 4.0

    @classmethod
    def from_table(cls, table: Table) -> LoadModel:
        d = cls()
        load = cls(
            mode=table.string("mode", d.mode, choices=LOAD_MODES),
            users=table.integer("users", d.users, low=1, high=10_000),
            rate=table.number("rate", d.rate, low=0.1, high=1_000_000),
            arrival=table.string("arrival", d.arrival, choices=ARRIVALS),
            processes=table.integer("processes", d.processes, low=1, high=64),
            warmup_s=table.number("warmup_s", d.warmup_s, low=0.0, high=3600),
            duration_s=table.number("duration_s", d.duration_s, low=0.5, high=36_000),
            quick_warmup_s=table.number("quick_warmup_s", d.quick_warmup_s, low=0.0, high=3600),
            quick_duration_s=table.number("quick_duration_s", d.quick_duration_s, low=0.5, high=36_000),
        )
        table.reject_unknown()
        if load.users < load.processes:
            raise table.fail("users", f"must be at least processes ({load.processes}): every locust process needs a user")
        return load

    def quick(self) -> LoadModel:
        return replace(self, warmup_s=self.quick_warmup_s, duration_s=self.quick_duration_s)


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
    sub = table.table(name, default)
    weights = {service: sub.number(service, low=0.0) for service in sub.data}
    if not weights or sum(weights.values()) <= 0:
        raise table.fail(name, "must give at least one service a positive weight")
    return weights
