"""Which runs a benchmark makes: the named matrices of run configurations.

- `ofat` (default): the baseline, then one factor changed at a time (framework, strategy,
  grouping, each cache, driver) — short, and each effect is read against the same baseline;
- `full`: framework x strategy x grouping x cache x driver, every combination;
- `network`: sequential vs gather, uncached, with 0, 1 and 5 ms of emulated delay to the database;
- `frameworks`: the baseline on each framework (a quick check).
"""

from __future__ import annotations

import itertools
from typing import Any

from reclab.results.config import RunConfig
from servers.core.variant import CACHES, DRIVERS, FRAMEWORKS, GROUPINGS, STRATEGIES, Variant

MATRICES = ("ofat", "full", "network", "frameworks")

# The talk's final design: Sanic, gathered calls, grouping in the app, a local cache in front of Redis.
BASELINE = RunConfig.of("sanic", Variant(strategy="gather", grouping="app", cache="two-level", driver="pymongo"))
LEVELS: dict[str, tuple[Any, ...]] = {
    "framework": FRAMEWORKS,
    "strategy": STRATEGIES,
    "grouping": GROUPINGS,
    "cache": CACHES,
    "driver": DRIVERS,
}
NETWORK_DELAYS_MS = (0.0, 1.0, 5.0)


def build_matrix(name: str, baseline: RunConfig = BASELINE, delay_ms: float = 0.0) -> list[RunConfig]:
    baseline = baseline.with_factor("delay_ms", delay_ms)
    if name == "ofat":
        runs = [baseline]
        for factor, levels in LEVELS.items():
            runs += [baseline.with_factor(factor, level) for level in levels if level != baseline.level(factor)]
        return runs
    if name == "full":
        return [
            RunConfig.of(fw, Variant(st, gr, ca, dr), delay_ms)
            for fw, st, gr, ca, dr in itertools.product(FRAMEWORKS, STRATEGIES, GROUPINGS, CACHES, DRIVERS)
        ]
    if name == "network":  # uncached, so every request makes its full set of database calls
        uncached = baseline.with_factor("cache", "none")
        return [uncached.with_factor("strategy", s).with_factor("delay_ms", d) for d in NETWORK_DELAYS_MS for s in STRATEGIES]
    if name == "frameworks":
        return [baseline.with_factor("framework", fw) for fw in FRAMEWORKS]
    raise ValueError(f"unknown matrix {name!r} (known: {', '.join(MATRICES)})")
