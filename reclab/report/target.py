"""The report of `reclab bench --target URL`: what the lab's side measured against a server it did not
start (throughput, latency, errors, what limited each phase on the lab's side), with the server's
own figures marked unknown rather than left out silently."""

from __future__ import annotations

import statistics

from reclab.report.document import Section, Table
from reclab.results.record import PhaseResult, RunRecord, excerpt


def target_sections(records: list[RunRecord]) -> list[Section]:
    bench = records[0].bench
    repeats = [r for r in records if r.kind == "target"]
    good = [r for r in repeats if r.ok]
    unknown = sorted({name for r in good for p in r.phases for name in p.unknown})
    summary = Section(
        f"Target {bench.target}",
        [
            f"The request stream of spec `{bench.spec.path}` (stream `{bench.stream_hash}`, dataset `{bench.dataset_hash}`: "
            "the target must serve that dataset) replayed against a server the lab did not start, "
            f"{len(good)} of {len(repeats)} repeats measured, {bench.load.processes} generator process(es) "
            f"({bench.generator}), {bench.load.users} users in closed phases.",
            "**Unknown:** the server's CPU, its share of a core and its counters cannot be read from outside: "
            + ", ".join(f"`{name}`" for name in unknown)
            + ". So CPU per request is not reported, and a phase's limit is known only on the lab's side (the "
            "generator, the shared core): `unknown` where none of those was saturated, which usually means the server "
            "or what it waits for."
            if unknown
            else "No repeat was measured.",
        ],
        tables=[_phase_table(good)] if good else [],
    )
    failed = [f"repeat {r.repeat + 1}: {excerpt(str(r.error))}" for r in repeats if not r.ok]
    out = [summary]
    if failed:
        out.append(Section("Warnings", [f"Failed: {'; '.join(failed)}"]))
    return out


def _phase_table(runs: list[RunRecord]) -> Table:
    rows = []
    for name in [p.name for p in runs[0].phases]:
        phases = [p for r in runs if (p := r.phase(name)) is not None]
        rows.append(
            [
                name,
                str(len(phases)),
                _spread([p.throughput_rps for p in phases], "{:.1f}"),
                _latency(phases, "p50"),
                _latency(phases, "p99"),
                _latency(phases, "p99_9"),
                str(sum(p.error_count for p in phases)),
                _spread([max((v for k, v in p.utilisation.items() if k == "generator"), default=0.0) for p in phases], "{:.0%}"),
                ", ".join(sorted({p.bottleneck for p in phases})),
                "unknown",
            ]
        )
    headers = ["phase", "repeats", "throughput req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "generator busy",
               "limited by", "server CPU/request"]  # fmt: skip
    return Table(headers, rows)


def _latency(phases: list[PhaseResult], field: str) -> str:
    values = [getattr(p.latency_us, field) / 1000 for p in phases if p.latency_us is not None]
    return _spread(values, "{:.2f}") if values else "–"


def _spread(values: list[float], form: str) -> str:
    """The median, and the range over repeats when there are several."""
    middle = form.format(statistics.median(values))
    return middle if len(values) < 2 else f"{middle} ({form.format(min(values))}–{form.format(max(values))})"
