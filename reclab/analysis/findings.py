"""Everything a report shows, computed from a result set: rows per variant with ratios to the
baseline and verdicts, one group per factor, the talk's claims, the network-delay table, warnings."""

from __future__ import annotations

from dataclasses import dataclass, field

from reclab.analysis.claims import ClaimFinding, evaluate_claims
from reclab.analysis.flags import ceilings, warnings
from reclab.analysis.stats import Interval, paired_ratio, verdict
from reclab.analysis.summary import (
    CACHE_HITS,
    DB_OPS,
    LATENCY,
    PERCENTILES,
    ROUND_TRIPS,
    SERVER_CPU,
    THROUGHPUT,
    VariantSummary,
    baseline_key,
    machine_speeds,
    summarise,
)
from reclab.errors import ResultsError
from reclab.results.config import FACTORS
from reclab.results.record import BenchInfo, Measurement, RunRecord


@dataclass(frozen=True)
class VariantRow:
    label: str
    summary: VariantSummary
    is_baseline: bool
    throughput: Interval | None
    latency_us: dict[str, float | None]  # medians over repeats, p50 .. p99.9
    server_cpu_ms: float | None
    db_ops: float | None
    round_trips: float | None
    cache_hit_ratio: float | None
    ratio: Interval | None  # throughput vs the baseline
    verdict: str


@dataclass(frozen=True)
class FactorFinding:
    factor: str
    rows: list[VariantRow]


@dataclass(frozen=True)
class NetworkRow:
    strategy: str
    delay_ms: float
    p50_us: float | None
    round_trips: float
    added_ms: float  # measured added round-trip time to MongoDB
    observed_ms: float | None  # p50 minus the same strategy's p50 at 0 ms

    @property
    def expected_ms(self) -> float:
        return self.round_trips * self.added_ms


@dataclass
class Findings:
    records: list[RunRecord]
    summaries: dict[str, VariantSummary]
    base_key: str | None
    bench: BenchInfo
    repeats: int
    speeds: list[float]
    ceilings: list[Measurement]
    variants: list[VariantRow] = field(default_factory=list)
    factors: list[FactorFinding] = field(default_factory=list)
    claims: list[ClaimFinding] = field(default_factory=list)
    network: list[NetworkRow] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def baseline(self) -> VariantSummary | None:
        return self.summaries.get(self.base_key) if self.base_key else None


def analyse(records: list[RunRecord]) -> Findings:
    if not records:
        raise ResultsError("no results to analyse")
    summaries = summarise(records)
    findings = Findings(
        records=records,
        summaries=summaries,
        base_key=baseline_key(summaries),
        bench=records[0].bench,
        repeats=len({r.repeat for r in records if r.kind == "run"}),
        speeds=machine_speeds(records),
        ceilings=ceilings(records),
    )
    findings.variants = [_row(findings, key, s) for key, s in summaries.items()]
    findings.factors = _factors(findings)
    findings.claims = evaluate_claims(summaries, findings.baseline)
    findings.network = _network(summaries)
    findings.warnings = warnings(records, summaries)
    return findings


def _row(findings: Findings, label: str, summary: VariantSummary) -> VariantRow:
    baseline = findings.baseline
    is_baseline = summary.key == findings.base_key
    ratio = None
    if not is_baseline and baseline is not None and summary.runs and baseline.runs:
        ratio = paired_ratio(summary.by_repeat(THROUGHPUT), baseline.by_repeat(THROUGHPUT))
    return VariantRow(
        label=label,
        summary=summary,
        is_baseline=is_baseline,
        throughput=summary.throughput(),
        latency_us={p: summary.median(LATENCY[p]) for p in PERCENTILES[:4]},
        server_cpu_ms=summary.median(SERVER_CPU),
        db_ops=summary.median(DB_OPS),
        round_trips=summary.median(ROUND_TRIPS),
        cache_hit_ratio=summary.median(CACHE_HITS),
        ratio=ratio,
        verdict="" if is_baseline else verdict(ratio),
    )


def _factors(findings: Findings) -> list[FactorFinding]:
    baseline = findings.baseline
    if baseline is None:
        return []
    out = []
    for factor in FACTORS:
        members = [s for s in findings.summaries.values() if s.config.differing_factors(baseline.config) == [factor]]
        if not members:
            continue
        rows = [_row(findings, f"{factor}={baseline.config.level(factor)}", baseline)]
        rows += [_row(findings, f"{factor}={s.config.level(factor)}", s) for s in members]
        out.append(FactorFinding(factor, rows))
    return out


def _network(summaries: dict[str, VariantSummary]) -> list[NetworkRow]:
    if len({s.config.delay_ms for s in summaries.values()}) < 2:
        return []
    p50 = LATENCY["p50"]
    at_zero = {s.config.strategy: s.median(p50) for s in summaries.values() if s.config.delay_ms == 0 and s.runs}
    rows = []
    for summary in summaries.values():
        if not summary.runs:
            continue
        median_p50 = summary.median(p50)
        zero_p50 = at_zero.get(summary.config.strategy)
        rows.append(
            NetworkRow(
                strategy=summary.config.strategy,
                delay_ms=summary.config.delay_ms,
                p50_us=median_p50,
                round_trips=summary.median(ROUND_TRIPS) or 0.0,
                added_ms=summary.added_delay_ms("mongo") or 0.0,
                observed_ms=(median_p50 - zero_p50) / 1000 if median_p50 is not None and zero_p50 is not None else None,
            )
        )
    return rows
