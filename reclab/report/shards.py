"""The report's section on a sharded database: each variant's load per shard (operations per request),
how uneven it is (the busiest shard against the mean, and against the others), and whether the
hot-key fix (`--cache hot`) brought the busiest shard's load down against the baseline, with an
interval over the repeats."""

from __future__ import annotations

import statistics
from pathlib import Path

from reclab.analysis.stats import geometric_interval, mean_interval
from reclab.report import plots
from reclab.report.document import Section, Table
from reclab.results.record import PhaseResult, RunRecord

HEADERS = ["variant", "ops/request per shard", "imbalance (busiest/mean)", "busiest/others", "shard CPU", "p99 ms"]


def shards_section(records: list[RunRecord], folder: Path, partition: str) -> Section | None:
    runs = [r for r in records if r.kind == "run" and r.ok and r.phases and r.phases[-1].shards]
    if not runs:
        return None
    phase_name = runs[0].phases[-1].name
    keys = list(dict.fromkeys(r.key for r in runs))
    by_key = {key: [r for r in runs if r.key == key] for key in keys}
    shards = len(runs[0].phases[-1].shards)
    rows, per_shard = [], {}
    for key, mine in by_key.items():
        phases = [p for r in mine if (p := r.phase(phase_name)) is not None]
        loads = [_per_request(p) for p in phases]
        per_shard[key] = [statistics.median(load[i] for load in loads) for i in range(shards)]
        imbalance = mean_interval([p.imbalance for p in phases if p.imbalance is not None])
        rest = mean_interval([v for p in phases if (v := _over_the_rest(p)) is not None])
        p99 = statistics.median(p.latency_us.p99 / 1000 for p in phases if p.latency_us is not None)
        cpu = [
            statistics.median(s.cpu_s or 0.0 for s in (p.shards[i] for p in phases)) / phases[0].window_s for i in range(shards)
        ]
        rows.append([
            key, " / ".join(f"{v:.2f}" for v in per_shard[key]), imbalance.text(2), rest.text(2),
            " / ".join(f"{c:.0%}" for c in cpu), f"{p99:.1f}",
        ])  # fmt: skip
    section = Section(
        f"Shards ({shards} MongoDB servers)",
        [
            f"Operations per request on each shard in the `{phase_name}` phase (median over repeats), as the server "
            f"routed them (events by user, reference data by item, `{partition}` keys: `servers/core/shards.py`); "
            "imbalance is the busiest "
            "shard's operations over the mean shard's (1 is even, "
            f"{shards} is everything on one shard), and over the mean of the others; the shards' CPU is each "
            "process's share of a core. Intervals: 95% over repeats.",
        ],
        tables=[Table(HEADERS, rows)],
    )
    section.paragraphs += _fix_verdicts(by_key, phase_name)
    (folder / "plots").mkdir(exist_ok=True)
    plots.shard_load(per_shard, folder / "plots" / "shards.png")
    section.images.append(("plots/shards.png", "operations per request on each shard, per variant"))
    return section


def _per_request(phase: PhaseResult) -> list[float]:
    served = max(1, phase.served)
    return [s.ops / served for s in phase.shards]


def _over_the_rest(phase: PhaseResult) -> float | None:
    ops = sorted((s.ops for s in phase.shards), reverse=True)
    rest = sum(ops[1:]) / (len(ops) - 1) if len(ops) > 1 else 0
    return ops[0] / rest if rest else None


def _fix_verdicts(by_key: dict[str, list[RunRecord]], phase_name: str) -> list[str]:
    """For each hot-key variant against the baseline: the busiest shard's operations per request and the
    p99, as ratios paired by repeat."""
    baseline = next((runs for runs in by_key.values() if runs[0].role == "baseline"), None)
    if baseline is None:
        return []
    out = []
    for key, runs in by_key.items():
        if runs[0].config.cache != "hot" or runs[0].role == "baseline":
            continue
        base_of = {r.repeat: r.phase(phase_name) for r in baseline}
        busiest, p99 = [], []
        for run in runs:
            mine, base = run.phase(phase_name), base_of.get(run.repeat)
            if mine is None or base is None:
                continue
            if (b := max(_per_request(base))) > 0:
                busiest.append(max(_per_request(mine)) / b)
            if mine.latency_us and base.latency_us:
                p99.append(mine.latency_us.p99 / base.latency_us.p99)
        load, tail = geometric_interval(busiest), geometric_interval(p99)
        if load is None:
            continue
        lower = load.has_interval and load.high is not None and load.high < 1
        out.append(
            f"**{key}** against the baseline: the busiest shard's operations per request x{load.text(2)} "
            f"({'down' if lower else 'not shown lower'}), p99 x{tail.text(2) if tail else '–'}."
        )
    return out
