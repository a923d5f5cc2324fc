"""Everything a report shows, computed from a result set: the A/A calibration, rows per variant
(capacity and what limited it, server CPU per request, open-loop latency) with their verdicts against
the baseline, one group per factor, the talk's claims, the network-delay table, warnings.

A result set that counted instructions (`reclab bench --measure instructions|both`) also has each
variant's instructions per request with its verdict, decided in the same family as the rest, the A/A
calibration on them, the instruction windows, and where the verdicts on instructions and on server CPU
time disagree. A set that only counted instructions has no timed phase: its verdicts rest on
instructions, and everything read from phases (capacity, CPU time, latency, database work) is absent."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from reclab.analysis.claims import ClaimFinding, add_claims, claims, saturation_note, settle
from reclab.analysis.flags import warnings
from reclab.analysis.stats import Interval, paired_test
from reclab.analysis.summary import Metric, Metrics, VariantSummary, machine_speeds, role_key, summarise
from reclab.analysis.verdicts import MARGIN, Comparison, Family, Kind, judge_alone
from reclab.analysis.workload import DatabaseWork, HistoryRow, OfferedLoad, by_history, database_work, offered_load
from reclab.errors import ResultsError
from reclab.results.config import FACTORS
from reclab.results.record import BenchInfo, PhaseResult, RunRecord

OFF_RATE = 0.10  # an open phase offering a rate further than this from its nominal one is warned about
DECIDED = (Kind.FASTER, Kind.SLOWER)  # verdicts that say a difference holds


@dataclass
class VariantRow:
    label: str
    summary: VariantSummary
    capacity: Interval | None
    limited_by: Counter[str]  # what limited the closed phase, over repeats
    server_cpu: Interval | None
    p50_ms: float | None  # open loop, median over repeats
    p99_ms: float | None
    errors: dict[str, int]
    db_ops: float | None
    round_trips: float | None
    cache_hit_ratio: float | None
    verdict: Comparison | None = None  # the primary metric against the baseline (`Findings.primary`)
    capacity_ratio: Interval | None = None
    p50_ratio: Interval | None = None
    latency_note: str = ""  # why its open-loop latency is not compared with the baseline's (empty: it is)
    instructions: Interval | None = None  # server instructions per request: mean over repeats, 95% interval
    instructions_verdict: Comparison | None = None  # instructions per request against the baseline
    instruction_errors: int = 0  # requests of its instruction windows answered with an error, or not at all


@dataclass(frozen=True)
class FactorFinding:
    factor: str
    rows: list[VariantRow]


@dataclass(frozen=True)
class NetworkRow:
    strategy: str
    delay_ms: float
    p50_ms: float | None
    round_trips: float
    added_idle_ms: float | None  # measured before the load, MongoDB
    added_loaded_ms: float | None  # measured during the open phase, MongoDB
    observed_ms: float | None  # p50 minus the same strategy's p50 at 0 ms

    @property
    def expected_ms(self) -> float | None:
        return None if self.added_loaded_ms is None else self.round_trips * self.added_loaded_ms


@dataclass(frozen=True)
class WindowRow:
    """A variant's instruction windows (medians over its runs): the slice of the stream counted."""

    key: str
    runs: int  # runs with an instruction count
    start: int  # the window's first stream position
    requests: float  # answered in the window
    connections: float  # keep-alive connections the window was sent over
    seconds: float  # the window's wall time, under valgrind
    processes: int  # server processes counted, at most
    errors: int  # every run together
    tools: tuple[str, ...]  # valgrind's version and tool, as the runs recorded it


class Discord(StrEnum):
    """How a variant's verdicts on server CPU time and on instructions disagree."""

    OPPOSITE = "opposite directions"  # one faster, the other slower
    EQUIVALENT = "one decided, the other equivalent"  # faster or slower against equivalent
    UNDECIDED = "one decided, the other inconclusive"  # weaker: only one of them could decide


@dataclass(frozen=True)
class Disagreement:
    """A variant whose verdict on server CPU time and on instructions per request disagree."""

    key: str
    cpu: Comparison
    instructions: Comparison
    discord: Discord


@dataclass
class Findings:
    records: list[RunRecord]
    summaries: dict[str, VariantSummary]
    bench: BenchInfo
    repeats: int
    speeds: list[float]
    ceilings: list[PhaseResult]
    metrics: Metrics
    margin: float
    base_key: str | None = None
    reference: VariantSummary | None = None  # the baseline's runs and its A/A copy's: what every variant is compared to
    aa: Comparison | None = None
    variants: list[VariantRow] = field(default_factory=list)
    factors: list[FactorFinding] = field(default_factory=list)
    claims: list[ClaimFinding] = field(default_factory=list)
    network: list[NetworkRow] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    family_size: int = 0
    offered: list[OfferedLoad] = field(default_factory=list)  # each open phase: nominal and offered rates
    database: list[DatabaseWork] = field(default_factory=list)  # each variant's database work per request
    history_phase: str = ""  # the phase the cost by history size is read from
    history: dict[str, list[HistoryRow]] = field(default_factory=dict)  # variant -> its cost by history size
    aa_instructions: Comparison | None = None  # the A/A calibration on instructions per request
    windows: list[WindowRow] = field(default_factory=list)  # each variant's instruction windows
    disagreements: list[Disagreement] = field(default_factory=list)  # CPU time against instructions
    judged_on_both: int = 0  # variants with a verdict on server CPU time and one on instructions
    spreads: dict[str, float] = field(default_factory=dict)  # metric name -> one run's spread (pooled, log scale)

    @property
    def baseline(self) -> VariantSummary | None:
        return self.summaries.get(self.base_key) if self.base_key else None

    @property
    def reliable(self) -> bool:
        """The A/A calibration came out equivalent."""
        return self.aa is not None and self.aa.verdict.kind is Kind.EQUIVALENT

    @property
    def timed(self) -> bool:
        """Some run of the set has timed phases (server CPU time, capacity, latency)."""
        return any(r.phases for s in self.summaries.values() for r in s.runs)

    @property
    def instructions_only(self) -> bool:
        """The set counted instructions and timed nothing (`reclab bench --measure instructions`)."""
        return self.metrics.instructions is not None and not self.timed

    @property
    def primary(self) -> Metric:
        """What verdicts about the server rest on: server CPU per request, or instructions per request
        in a set that only counted them."""
        if self.instructions_only and self.metrics.instructions is not None:
            return self.metrics.instructions
        return self.metrics.cost


def analyse(records: list[RunRecord], margin: float = MARGIN) -> Findings:
    if not records:
        raise ResultsError("no results to analyse")
    summaries = summarise(records)
    bench = records[0].bench
    findings = Findings(
        records=records,
        summaries=summaries,
        bench=bench,
        repeats=len({r.repeat for r in records if r.kind == "run" and r.ok}),
        speeds=machine_speeds(records),
        ceilings=[p for r in records if r.kind == "ceiling" for p in r.phases],
        metrics=Metrics.of(bench.load, records),
        margin=margin,
        base_key=role_key(summaries, "baseline"),
    )
    baseline = findings.baseline
    aa = next((s for s in summaries.values() if s.role == "aa"), None)
    family = Family(margin, list(summaries.values()))
    findings.reference = baseline.joined(aa) if baseline is not None and aa is not None else baseline
    findings.variants = [_row(findings, family, key, s) for key, s in summaries.items()]
    if baseline is not None and findings.reference is not None:
        findings.aa = judge_alone(aa, baseline, findings.primary, list(summaries.values()), margin) if aa else None
        findings.aa_instructions = _aa_instructions(findings, aa)
        findings.factors = _factors(findings)
        if findings.instructions_only:  # nothing timed: no claim is measured
            findings.claims = _unmeasured_claims(summaries)
        else:
            findings.claims = add_claims(family, summaries, findings.reference, findings.metrics)
    family.decide()
    for claim in findings.claims:
        settle(claim)
    findings.family_size = family.size()
    if not findings.instructions_only:
        findings.network = _network(summaries, findings.metrics)
    measured = [s for s in summaries.values() if any(r.phases for r in s.runs)]  # timed: ok runs with phases
    findings.offered = [] if findings.instructions_only else offered_load(bench.load.phases, measured)
    findings.database = [database_work(s, findings.metrics.cost.phase) for s in measured]
    findings.history_phase = findings.metrics.p50.phase if findings.metrics.p50 else findings.metrics.cost.phase
    findings.history = {s.key: rows for s in measured if (rows := by_history(s, findings.history_phase))}
    findings.warnings = warnings(records) + _rate_warnings(findings)
    if findings.metrics.instructions is not None:
        _add_instruction_findings(findings, family)
    return findings


def _aa_instructions(findings: Findings, aa: VariantSummary | None) -> Comparison | None:
    """The A/A calibration on instructions per request (the A/A itself where the set only counted them)."""
    metric, baseline = findings.metrics.instructions, findings.baseline
    if metric is None or aa is None or baseline is None:
        return None
    if findings.primary == metric:
        return findings.aa
    return judge_alone(aa, baseline, metric, list(findings.summaries.values()), findings.margin)


def _unmeasured_claims(summaries: dict[str, VariantSummary]) -> list[ClaimFinding]:
    """Every claim of the talk, none measured (a set that timed nothing)."""
    delays = sorted({s.config.delay_ms for s in summaries.values()}, key=lambda d: -1.0 if d is None else d)
    return [ClaimFinding(claim, None) for claim in claims(delays)]


def _add_instruction_findings(findings: Findings, family: Family) -> None:
    """The instruction windows, the verdicts on CPU time and on instructions that disagree, and each
    metric's run-to-run spread, once the family is decided."""
    findings.windows = [w for s in findings.summaries.values() if (w := window_row(s)) is not None]
    both = [
        (row.summary.key, row.verdict, row.instructions_verdict)
        for row in findings.variants
        if row.verdict is not None and row.instructions_verdict is not None and row.verdict is not row.instructions_verdict
    ]
    findings.judged_on_both = len(both)
    findings.disagreements = [
        Disagreement(key, cpu, counted, discord)
        for key, cpu, counted in both
        if (discord := disagreement(cpu, counted)) is not None
    ]
    for metric in (findings.metrics.cost, findings.metrics.instructions):
        if metric is not None and (pool := family.pool(metric)) is not None:
            findings.spreads[metric.name] = pool.sd


def window_row(summary: VariantSummary) -> WindowRow | None:
    """The variant's instruction windows, medians over its runs (None: it counted none)."""
    counts = [r.instructions for r in summary.runs if r.instructions is not None]
    if not counts:
        return None
    return WindowRow(
        key=summary.key,
        runs=len(counts),
        start=round(statistics.median(c.start for c in counts)),
        requests=statistics.median(c.requests for c in counts),
        connections=statistics.median(c.connections for c in counts),
        seconds=statistics.median(c.seconds for c in counts),
        processes=max(len(c.processes) for c in counts),
        errors=sum(c.errors for c in counts),
        tools=tuple(sorted({c.tool for c in counts if c.tool})),
    )


def disagreement(cpu: Comparison, counted: Comparison) -> Discord | None:
    """How two verdicts on one variant disagree (None: they do not): one faster or slower against the
    opposite direction or equivalent; weaker, one faster or slower against inconclusive. Verdicts not
    judged are left out."""
    kinds = {cpu.verdict.kind, counted.verdict.kind}
    if not kinds & set(DECIDED) or Kind.NOT_JUDGED in kinds or len(kinds) == 1:
        return None
    if kinds == set(DECIDED):
        return Discord.OPPOSITE
    if Kind.EQUIVALENT in kinds:
        return Discord.EQUIVALENT
    return Discord.UNDECIDED


def _row(findings: Findings, family: Family, label: str, summary: VariantSummary) -> VariantRow:
    m = findings.metrics
    row = VariantRow(
        label=label,
        summary=summary,
        capacity=summary.interval(m.capacity) if m.capacity else None,
        limited_by=summary.bottlenecks(m.capacity.phase) if m.capacity else Counter(),
        server_cpu=summary.interval(m.cost),
        p50_ms=summary.median(m.p50) if m.p50 else None,
        p99_ms=summary.median(m.p99) if m.p99 else None,
        errors=summary.errors(),
        db_ops=summary.phase_median(m.cost.phase, lambda p: p.db_ops_per_request),
        round_trips=summary.phase_median(m.cost.phase, lambda p: p.db_round_trips_per_request),
        cache_hit_ratio=summary.phase_median(m.cost.phase, lambda p: p.cache_hit_ratio),
    )
    if m.instructions is not None:
        row.instructions = summary.interval(m.instructions)
        row.instruction_errors = sum(r.instructions.errors for r in summary.runs if r.instructions is not None)
    reference = findings.reference
    if reference is not None and summary.role == "variant" and summary.runs:
        row.verdict = family.add(summary, reference, findings.primary)
        if m.instructions is not None:
            row.instructions_verdict = family.add(summary, reference, m.instructions)
        row.capacity_ratio = family_ratio(summary, reference, m.capacity, findings.margin) if m.capacity else None
        row.p50_ratio = family_ratio(summary, reference, m.p50, findings.margin) if m.p50 else None
        row.latency_note = saturation_note(m.p50, (summary, reference), m) if m.p50 else ""
    return row


def family_ratio(variant: VariantSummary, reference: VariantSummary, metric: Metric, margin: float) -> Interval | None:
    """A ratio shown for the record, without a verdict (not part of the family)."""
    return paired_test(variant.by_repeat(metric), reference.by_repeat(metric), margin).ratio


def relabel(row: VariantRow, label: str) -> VariantRow:
    return VariantRow(**{**row.__dict__, "label": label})


def _factors(findings: Findings) -> list[FactorFinding]:
    baseline = findings.baseline
    if baseline is None:
        return []
    rows = {row.summary.key: row for row in findings.variants}
    out = []
    for factor in FACTORS:
        members = [
            s
            for s in findings.summaries.values()
            if s.role == "variant" and s.config.differing_factors(baseline.config) == [factor]
        ]
        if factor == "framework":  # the talk's Tornado, on asyncio's loop, beside the like-for-like one
            members += [s for s in findings.summaries.values() if s.role == "variant" and
                        sorted(s.config.differing_factors(baseline.config)) == ["framework", "loop"]]  # fmt: skip
        if not members:
            continue
        factor_rows = [relabel(rows[baseline.key], f"{factor}={baseline.config.level(factor)} (baseline)")]
        for s in members:
            extra = [f for f in s.config.differing_factors(baseline.config) if f != factor]
            label = f"{factor}={s.config.level(factor)}" + "".join(f", {f}={s.config.level(f)}" for f in extra)
            factor_rows.append(relabel(rows[s.key], label))
        out.append(FactorFinding(factor, factor_rows))
    return out


def _network(summaries: dict[str, VariantSummary], metrics: Metrics) -> list[NetworkRow]:
    delays = {s.config.delay_ms for s in summaries.values() if s.role != "aa"}
    p50 = metrics.p50
    if len(delays) < 2 or None in delays or p50 is None:
        return []
    at_zero = {s.config.strategy: s.median(p50) for s in summaries.values() if s.config.delay_ms == 0 and s.role != "aa"}
    rows = []
    for s in summaries.values():
        if not s.runs or s.role == "aa" or s.config.delay_ms is None:
            continue
        median, zero = s.median(p50), at_zero.get(s.config.strategy)
        idle = [r.added_delay_idle_ms["mongo"] for r in s.runs if "mongo" in r.added_delay_idle_ms]
        loaded = [p.added_delay_ms["mongo"] for r in s.runs for p in r.phases if "mongo" in p.added_delay_ms]
        rows.append(
            NetworkRow(
                strategy=s.config.strategy,
                delay_ms=s.config.delay_ms,
                p50_ms=median,
                round_trips=s.phase_median(p50.phase, lambda p: p.db_round_trips_per_request) or 0.0,
                added_idle_ms=_median(idle),
                added_loaded_ms=_median(loaded),
                observed_ms=None if median is None or zero is None else median - zero,
            )
        )
    return sorted(rows, key=lambda r: (r.delay_ms, r.strategy))


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _rate_warnings(findings: Findings) -> list[tuple[str, str]]:
    """Open phases not measured below saturation (`flags.saturation`), and open phases that offered
    another rate than their nominal one, per variant."""
    out = []
    m = findings.metrics
    for key, s in findings.summaries.items():
        for phase in (p for p in findings.bench.load.phases if p.mode == "open"):
            saturated = s.saturated(phase.name, m.capacity)
            if saturated:
                why = ", ".join(sorted({reason for reasons in saturated for reason in reasons}))
                out.append((key, f"`{phase.name}` was not below saturation in {len(saturated)} of {len(s.runs)} runs "
                                 f"({why}): its latency is not compared"))  # fmt: skip
            offered = [p.offered_rps for p in s.phases(phase.name) if p.offered_rps]
            off = [rate for rate in offered if abs(rate / phase.rate - 1) > OFF_RATE]
            if off:
                out.append((key, f"`{phase.name}` offered {min(off):.3g} to {max(off):.3g}/s in {len(off)} runs, not its "
                                 f"nominal {phase.rate:g}/s (±{OFF_RATE:.0%})"))  # fmt: skip
    return out
