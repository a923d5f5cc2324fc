"""Which runs a benchmark makes: the named matrices of run configurations.

Every matrix has a baseline and, under a second label, the baseline again (`role` "aa"): the two
must come out equivalent, or the whole result set is marked unreliable (A/A calibration).

- `ofat` (default): the baseline — the talk's final design — then one factor changed at a time
  (framework on the same event loop, event loop, strategy, grouping, each cache, driver), and
  Tornado on asyncio's loop, to test the talk's "Sanic 2x Tornado" as the talk made it;
- `full`: framework x loop x strategy x grouping x cache x driver, every combination (every framework
  on every server it runs on);
- `network`: sequential vs gather, uncached, through the delay proxy at 0, 1 and 5 ms;
- `frameworks`: Sanic, Tornado and aiohttp, and FastAPI and Starlette on uvicorn and on Granian, each on
  uvloop and on asyncio's loop;
- `supernode`: the baseline (two-level cache) and the hot-key fix (`--cache hot`), meant for the
  supernode spec on 3 shards (what `reclab bench --matrix supernode` gives by default);
- `rules`: the baseline with rules that carry a price cap and a boost (`servers/rules/priced.toml`
  unless other rules are given), as written and as rule code (`rules=code`);
- `faults`: the baseline on each framework (and server), through the delay proxy at 0 ms, without a fault and with
  each fault of `reclab.run.faults` injected for an interval of an open-loop window (no A/A: it
  judges survival, not cost);
- `overload`: the baseline with each admission control of the server (`none`, `fixed`, `adaptive`), driven
  at multiples of its capacity (`reclab.run.overload`; no A/A: it judges behaviour under overload, not
  cost).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from reclab.results.config import RunConfig
from reclab.results.faults import FAULTS
from servers.core.admission import ADMISSIONS
from servers.core.rules import DEFAULT_RULES, PRICED_RULES
from servers.core.variant import CACHES, DRIVERS, GROUPINGS, LOOPS, SELF_SERVED, STACKS, STRATEGIES, Variant

MATRICES = ("ofat", "full", "network", "frameworks", "faults", "supernode", "rules", "drivers", "grouping", "overload")
SUPERNODE_SHARDS = 3
AA_SUFFIX = "@aa"

# The talk's final design: Sanic on uvloop, gathered calls, grouping in the app, a local cache in front of Redis.
BASELINE = RunConfig.of("sanic", Variant(strategy="gather", grouping="app", cache="two-level", driver="pymongo"))
LEVELS: dict[str, tuple[Any, ...]] = {
    "framework": SELF_SERVED,  # the talk's question; the frameworks matrix adds FastAPI and Starlette on uvicorn and Granian
    "loop": LOOPS,
    "strategy": STRATEGIES,
    "grouping": GROUPINGS,
    "cache": tuple(c for c in CACHES if c != "hot"),  # hot is the supernode's fix: the supernode matrix has it
    "driver": tuple(d for d in DRIVERS if d != "wire"),  # wire is a yardstick: the drivers matrix has it
}
NETWORK_DELAYS_MS = (0.0, 1.0, 5.0)


@dataclass(frozen=True)
class MatrixEntry:
    """One variant of a matrix, under the key its runs are recorded with."""

    config: RunConfig
    role: str = "variant"  # baseline | aa | variant

    @property
    def key(self) -> str:
        return self.config.key + (AA_SUFFIX if self.role == "aa" else "")


def _with_baseline(baseline: RunConfig, others: list[RunConfig]) -> list[MatrixEntry]:
    """The baseline, its A/A copy, then the other variants (each once)."""
    unique = [c for c in dict.fromkeys(others) if c != baseline]
    return [MatrixEntry(baseline, "baseline"), MatrixEntry(baseline, "aa"), *(MatrixEntry(c) for c in unique)]


def _without_aa(runs: list[RunConfig]) -> list[MatrixEntry]:
    """The first run as the baseline, then the others, with no A/A copy (matrices that judge behaviour, not cost)."""
    return [MatrixEntry(runs[0], "baseline"), *(MatrixEntry(c) for c in runs[1:])]


def rules_for(matrix: str, rules: Path) -> Path:
    """The rule file a matrix runs with: the `rules` matrix needs a price cap and a boost to turn into
    code, so it takes the priced rules in place of the default ones."""
    return PRICED_RULES if matrix == "rules" and rules == DEFAULT_RULES else rules


def build_matrix(name: str, baseline: RunConfig = BASELINE, delay_ms: float | None = None) -> list[MatrixEntry]:
    baseline = baseline.with_factor("delay_ms", delay_ms)
    if name == "ofat":
        others = [
            baseline.with_factor(f, level) for f, levels in LEVELS.items() for level in levels if level != baseline.level(f)
        ]
        talk = baseline.with_factor("framework", "tornado").with_factor("loop", "asyncio")  # the talk's Tornado
        return _with_baseline(baseline, [*others, talk])
    if name == "full":
        combos = itertools.product(STACKS, LOOPS, STRATEGIES, GROUPINGS, CACHES, DRIVERS)
        return _with_baseline(
            baseline, [RunConfig.of(fw, Variant(st, gr, ca, dr), lp, delay_ms) for fw, lp, st, gr, ca, dr in combos]
        )
    if name == "network":  # uncached, so every request makes its full set of database calls; the proxy even at 0 ms
        uncached = baseline.with_factor("cache", "none")
        points = [uncached.with_factor("strategy", s).with_factor("delay_ms", d) for d in NETWORK_DELAYS_MS for s in STRATEGIES]
        return _with_baseline(points[1], points)  # gather at 0 ms
    if name == "frameworks":
        return _with_baseline(
            baseline, [baseline.with_factor("framework", fw).with_factor("loop", lp) for fw in STACKS for lp in LOOPS]
        )
    if name == "supernode":  # on the supernode spec and 3 shards: without the hot-key fix, and with it
        return _with_baseline(baseline, [baseline.with_factor("cache", "hot")])
    if name == "rules":  # what compiled rule code costs: the price cap and boost as written, and as code
        return _with_baseline(baseline, [baseline.with_factor("rules", "code")])
    if name == "drivers":  # what the driver's own work costs: PyMongo, Motor, and the bare wire protocol
        return _with_baseline(baseline, [baseline.with_factor("driver", driver) for driver in DRIVERS])
    if name == "grouping":  # where a user's events are grouped, uncached: every request reads its user's activity
        uncached = baseline.with_factor("cache", "none")
        return _with_baseline(uncached, [uncached.with_factor("grouping", grouping) for grouping in GROUPINGS])
    if name == "faults":
        proxied = baseline.with_factor("delay_ms", 0.0)
        runs = [msgspec.structs.replace(proxied.with_factor("framework", fw), fault=f) for fw in STACKS for f in (None, *FAULTS)]
        return _without_aa(runs)
    if name == "overload":  # admission none (the baseline), fixed and adaptive, each above its capacity
        return _without_aa([baseline.with_factor("admission", mode) for mode in ADMISSIONS])
    raise ValueError(f"unknown matrix {name!r} (known: {', '.join(MATRICES)})")
