"""Synthetic result sets: every variant's server CPU per request and capacity as a multiple of the
baseline's, with a machine factor common to each repeat (drift) and a little noise per run."""

from __future__ import annotations

import random

import msgspec

from reclab.results.config import RunConfig
from reclab.results.record import BenchInfo, RunRecord
from reclab.run.matrix import BASELINE
from tests.records import BENCH, record

BASE_CPU_MS, BASE_RPS, BASE_P50_MS = 2.0, 400.0, 8.0


def result_set(
    effects: dict[RunConfig, float],
    *,
    repeats: int = 5,
    noise: float = 0.01,
    slowdown: float = 1.0,
    aa_effect: float = 1.0,
    seed: int = 1,
    bench: BenchInfo = BENCH,
) -> list[RunRecord]:
    """Records of the baseline, its A/A copy and each variant of `effects` (its CPU-per-request ratio
    to the baseline); `slowdown` multiplies every run's CPU (and divides capacity), like a slower machine."""
    rng = random.Random(seed)
    runs = []
    variants = [(BASELINE, "baseline", 1.0), (BASELINE, "aa", aa_effect), *((c, "variant", e) for c, e in effects.items())]
    for repeat in range(repeats):
        machine = slowdown * (1 + rng.uniform(-0.05, 0.05))  # drift, common to the whole repeat
        for order, (config, role, effect) in enumerate(variants):
            factor = effect * machine * (1 + rng.gauss(0, noise))
            runs.append(record(config, repeat, BASE_RPS / factor, BASE_P50_MS * factor, BASE_CPU_MS * factor, role, order, bench))
    return runs


def with_bench(records: list[RunRecord], **changes: object) -> list[RunRecord]:
    bench = msgspec.structs.replace(records[0].bench, **changes)
    return [msgspec.structs.replace(r, bench=bench) for r in records]
