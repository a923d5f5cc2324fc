"""Which runs a benchmark makes: run configurations and the named matrices.

- `ofat` (default): the baseline, then one factor changed at a time (framework, strategy,
  grouping, each cache, driver) — short, and each effect is read against the same baseline;
- `full`: framework x strategy x grouping x cache x driver, every combination;
- `network`: sequential vs gather, uncached, with 0, 1 and 5 ms of emulated delay to the database;
- `frameworks`: the baseline on each framework (a quick check).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from servers.core.variant import CACHES, DRIVERS, FRAMEWORKS, GROUPINGS, STRATEGIES, Variant

MATRICES = ("ofat", "full", "network", "frameworks")
FACTORS = ("framework", "strategy", "grouping", "cache", "driver", "delay_ms")


@dataclass(frozen=True)
class RunConfig:
    framework: str = "sanic"
    variant: Variant = field(default_factory=Variant)
    delay_ms: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.framework}/{self.variant.label()}/delay={self.delay_ms:g}ms"

    def as_dict(self) -> dict[str, Any]:
        return {"framework": self.framework, **self.variant.as_dict(), "delay_ms": self.delay_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        variant = Variant(data["strategy"], data["grouping"], data["cache"], data["driver"])
        return cls(data["framework"], variant, float(data.get("delay_ms", 0.0)))

    def with_factor(self, factor: str, value: Any) -> RunConfig:
        if factor == "framework":
            return replace(self, framework=value)
        if factor == "delay_ms":
            return replace(self, delay_ms=float(value))
        return replace(self, variant=replace(self.variant, **{factor: value}))


# The talk's final design: Sanic, gathered calls, grouping in the app, a local cache in front of Redis.
BASELINE = RunConfig("sanic", Variant(strategy="gather", grouping="app", cache="two-level", driver="pymongo"))
LEVELS: dict[str, tuple[Any, ...]] = {
    "framework": FRAMEWORKS,
    "strategy": STRATEGIES,
    "grouping": GROUPINGS,
    "cache": CACHES,
    "driver": DRIVERS,
}


def build_matrix(name: str, baseline: RunConfig = BASELINE, delay_ms: float = 0.0) -> list[RunConfig]:
    baseline = replace(baseline, delay_ms=delay_ms)
    if name == "ofat":
        runs = [baseline]
        for factor, levels in LEVELS.items():
            runs += [baseline.with_factor(factor, level) for level in levels if level != _level(baseline, factor)]
        return runs
    if name == "full":
        return [
            RunConfig(fw, Variant(st, gr, ca, dr), delay_ms)
            for fw, st, gr, ca, dr in itertools.product(FRAMEWORKS, STRATEGIES, GROUPINGS, CACHES, DRIVERS)
        ]
    if name == "network":  # uncached, so every request makes its full set of database calls
        uncached = baseline.with_factor("cache", "none")
        return [uncached.with_factor("strategy", s).with_factor("delay_ms", d) for d in (0.0, 1.0, 5.0) for s in STRATEGIES]
    if name == "frameworks":
        return [baseline.with_factor("framework", fw) for fw in FRAMEWORKS]
    raise ValueError(f"unknown matrix {name!r} (known: {', '.join(MATRICES)})")


def _level(config: RunConfig, factor: str) -> Any:
    return config.as_dict()[factor]
