"""The report of `reclab capacity`: each variant's capacity at the latency objective, its ratio to
the baseline's (with an interval over the repeated searches), what broke first above it, and a
latency-against-offered-load curve per variant with the objective and the knee marked."""

from __future__ import annotations

import statistics
from pathlib import Path

from reclab.analysis.stats import geometric_interval
from reclab.report import charts, plots
from reclab.report.document import Section, Table
from reclab.results.config import key_slug
from reclab.results.record import CapacityResult, RunRecord, excerpt


def capacity_sections(records: list[RunRecord], folder: Path) -> list[Section]:
    results = [r for r in records if r.kind == "capacity" and r.capacity is not None]
    steps = [r for r in records if r.kind == "capacity_step" and r.step is not None]
    keys = list(dict.fromkeys(r.key for r in [*results, *steps]))
    if not results:
        return [Section("Capacity", ["No search has ended yet: no capacity to report."])]
    first = results[0].capacity
    assert first is not None
    bench = results[0].bench
    baseline = next((r.key for r in results if r.role == "baseline"), keys[0])
    method = Section(
        f"Capacity at p99 ≤ {first.slo_p99_ms:g} ms, errors ≤ {first.max_error_rate:.2%}",
        [
            "Each variant's capacity is the highest arrival rate (open loop, the spec's arrival process) whose window "
            "met the objective. Each variant's server is started once per search and warmed up on the stream (closed "
            "loop); every step is then one window of a fixed number of arrivals against it, on the same stream positions; "
            "unanswered arrivals, and arrivals held back by the outstanding cap, count as errors, and enter the latency "
            "from their due time. The rate grows x2 until a window breaks the objective, "
            "then is bisected to within 5%, then confirmed: the capacity again (it must pass) and 1.25 x it (it must "
            "fail). The variants' searches take turns, in an order drawn afresh every round.",
            "Unless the server's core was what saturated above the capacity, the figure reads **at least**: when the "
            "generator, the database, the cache or the shared core saturated first, it is that resource's limit; when "
            "nothing saturated, the latency rose from queueing with every resource still idle part of the time. Either "
            "way the server's own capacity is higher, and the figure does not compare servers.",
            f"Spec `{bench.spec.path}`, stream `{bench.stream_hash}`, dataset `{bench.dataset_hash}`; cores: "
            + (f"server {bench.cores.server}, the rest {bench.cores.others}" if bench.cores else "not pinned")
            + f"; {bench.load.processes} generator process(es) ({bench.generator}).",
        ],
    )
    method.tables.append(_table(results, keys, baseline))
    (folder / "plots").mkdir(exist_ok=True)
    curves: dict[str, list[tuple[float, float]]] = {}
    for key in keys:
        mine = [s for s in steps if s.key == key and s.phases and s.phases[0].latency_us is not None]
        points = [(s.step.rate, s.phases[0].latency_us.p50 / 1000, s.phases[0].latency_us.p99 / 1000, s.step.passed)  # type: ignore[union-attr]
                  for s in mine]  # fmt: skip
        capacities = [c.capacity_rps for r in results if r.key == key and (c := r.capacity) is not None and c.capacity_rps]
        knee = statistics.median(capacities) if capacities else None
        if points:
            name = f"plots/capacity-{key_slug(key)}.png"
            plots.latency_load(points, first.slo_p99_ms, knee, key, folder / name)
            method.images.append((name, f"{key}: p50 and p99 against offered load (hollow: broke the objective)"))
            curves[f"{key} p99"] = [(rate, p99) for rate, _, p99, _ in points]
            curves[f"{key} p50"] = [(rate, p50) for rate, p50, _, _ in points]
    if curves:
        top = max(rate for points in curves.values() for rate, _ in points)
        method.charts.append(charts.curves(
            curves, "offered load (req/s, open loop)", "latency (ms)", "latency_load",
            f"Latency against offered load, every step of every search (dashed: the objective, p99 {first.slo_p99_ms:g} ms)",
            log_y=True, reference=[(0.0, first.slo_p99_ms), (top, first.slo_p99_ms)],
        ))  # fmt: skip
    out = [method]
    failed = [
        f"{s.key} #{s.repeat + 1} at {s.step.rate:g}/s: {excerpt(str(s.error))}" for s in steps if s.status != "ok" and s.step
    ]
    unconfirmed = [f"{r.key} #{r.repeat + 1}" for r in results if r.capacity and not r.capacity.confirmed]
    notes = []
    if unconfirmed:
        notes.append("Unconfirmed (the confirmation windows disagreed with the search, or it ran out of steps): "
                     + ", ".join(unconfirmed))  # fmt: skip
    if failed:
        notes.append("Steps whose run failed (counted as breaking the objective): " + "; ".join(failed))
    if notes:
        out.append(Section("Warnings", notes))
    return out


def _table(results: list[RunRecord], keys: list[str], baseline: str) -> Table:
    by_key: dict[str, dict[int, CapacityResult]] = {}
    for r in results:
        if r.capacity is not None:
            by_key.setdefault(r.key, {})[r.repeat] = r.capacity
    rows = []
    for key in keys:
        mine = by_key.get(key, {})
        found = [c for c in mine.values() if c.capacity_rps is not None]
        if not found:
            rows.append([key, "none met the objective", "", "", "", "", "", ""])
            continue
        median = statistics.median(c.capacity_rps for c in found if c.capacity_rps is not None)
        lower_bound = any(c.at_least for c in found)
        ratios = [
            c.capacity_rps / b.capacity_rps
            for repeat, c in mine.items()
            if (b := by_key.get(baseline, {}).get(repeat)) is not None and c.capacity_rps and b.capacity_rps
        ]
        ratio = geometric_interval(ratios)
        bounds = lower_bound or any(c.at_least for c in by_key.get(baseline, {}).values())
        shown = "n/a: a lower bound" if bounds else (ratio.text(3) if ratio else "–")
        if ratio and not ratio.has_interval and not bounds:
            shown += " (one search: no interval)"
        latest = found[-1]
        rows.append(
            [
                key,
                f"{'at least ' if lower_bound else ''}{median:.1f}",
                ", ".join(f"{c.capacity_rps:.1f}" for c in found),
                "yes" if all(c.confirmed for c in found) else "no",
                " / ".join("–" if v is None else f"{v:.1f}" for v in (latest.p50_ms, latest.p99_ms, latest.p99_9_ms)),
                "; ".join(latest.broke_above) or "–",
                latest.limited_by,
                "1 (baseline)" if key == baseline else shown,
            ]
        )
    headers = ["variant", "capacity req/s (median)", "each search", "confirmed", "p50 / p99 / p99.9 ms there",
               "broke first above it", "limited by", "ratio to baseline"]  # fmt: skip
    return Table(headers, rows)
