"""What the overload matrix found (`reclab bench --matrix overload`): for each admission control and each
offered multiple of the capacity, the goodput over repeats and what came with it, a verdict, and what
admission control costs below capacity.

Verdicts, per mode and multiple (goodput: the mean over repeats; latencies: the median over repeats):
- from `OVERLOAD_FROM` (2x) up, against the capacity: `holds` when goodput is at least `HOLD_SHARE` of
  it (`QUICK_HOLD_SHARE` for a quick result set), the p99 of the 2xx answers within the objective and
  the p99 of the shed answers within `SHED_P99_MS`; `collapses` when goodput is below `COLLAPSE_SHARE`
  of the capacity; else `degrades`, naming the conditions that failed;
- below it, against the offered rate: `holds` when goodput is at least `HOLD_SHARE` (quick:
  `QUICK_HOLD_SHARE`) of it, `collapses` below `COLLAPSE_SHARE` of it, else `degrades`.

The cost of admission: server CPU per request (at one pace, `summary.server_cpu`) in the lowest
multiple's phase, each mode against none, paired by repeat (`verdicts.Family`, Holm across the modes),
judged for equivalence within ±`COST_MARGIN`; an inconclusive verdict says about how many repeats would
decide it (`repeats_to_decide`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from scipy import stats

from reclab.analysis.stats import ALPHA, POWER, Interval, PairedTest, mean_interval
from reclab.analysis.summary import VariantSummary, server_cpu, summarise
from reclab.analysis.verdicts import Comparison, Family, Kind, Verdict
from reclab.results.record import RunRecord
from servers.core.admission import ADMISSIONS

HOLD_SHARE, QUICK_HOLD_SHARE = 0.90, 0.80
COLLAPSE_SHARE = 0.50
SHED_P99_MS = 5.0  # a shed answer is a fast "no": its p99 at most
OVERLOAD_FROM = 2.0  # from this multiple up, goodput is judged against the capacity, below against the offered rate
COST_MARGIN = 0.05  # admission control below capacity should cost the same, within ±5%
SHED = "shed"


@dataclass(frozen=True)
class Capacity:
    """The capacity the load multiplied: searched at the start of the bench (with steps) or given."""

    rps: float
    steps: int  # 0: given with --capacity-rps
    confirmed: bool
    at_least: bool
    limited_by: str
    objective_ms: float
    key: str

    @property
    def searched(self) -> bool:
        return self.steps > 0


@dataclass(frozen=True)
class Cell:
    """One admission mode at one offered multiple of the capacity, over its repeats."""

    mode: str
    key: str
    phase: str
    multiple: float
    runs: int
    offered_rps: float | None  # mean over repeats
    goodput: Interval | None  # req/s: mean with its 95% t interval over repeats
    goodput_share: float | None  # of the capacity
    shed_share: float | None  # of the arrivals offered
    p99_ok_ms: float | None  # median over repeats
    p99_shed_ms: float | None  # from the due moment (the generator's lag included) ...
    p99_shed_sent_ms: float | None  # ... and from sending: the server's refusal (None: not recorded)
    other_errors: dict[str, int]  # every error but shed, summed over repeats
    cpu_ms: float | None  # server CPU per request, median over repeats
    limited_by: Counter[str]
    attempts: float | None  # clients that retry: attempts per arrival sent (1 + retries / sent)
    retried_ok: int
    held_back: int  # arrivals the outstanding-requests cap held back, over repeats (0: it did not limit the load)
    verdict: Verdict
    why: list[str]


@dataclass(frozen=True)
class AdmissionCost:
    """A mode's server CPU per request below capacity, against no admission control."""

    mode: str
    phase: str
    ratio: Interval | None
    verdict: Verdict
    detectable: float | None
    repeats: int
    needed: int | None  # about how many repeats would decide equivalence (None: more would not, or no spread yet)
    outside: bool  # the ratio so far lies outside the margin


@dataclass
class OverloadFindings:
    capacity: Capacity | None
    objective_ms: float
    quick: bool
    retry_shed: bool
    max_retries: int
    modes: list[str] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    costs: list[AdmissionCost] = field(default_factory=list)

    def cell(self, mode: str, multiple: float) -> Cell | None:
        return next((c for c in self.cells if c.mode == mode and c.multiple == multiple), None)

    @property
    def multiples(self) -> list[float]:
        return sorted({c.multiple for c in self.cells})


def judge(
    multiple: float,
    goodput_rps: float | None,
    offered_rps: float | None,
    capacity_rps: float | None,
    p99_ok_ms: float | None,
    p99_shed_ms: float | None,
    objective_ms: float,
    quick: bool,
) -> tuple[Verdict, list[str]]:
    """The verdict on one mode at one multiple (see the module's docstring), and why it is not `holds`."""
    hold = QUICK_HOLD_SHARE if quick else HOLD_SHARE
    overloaded = multiple >= OVERLOAD_FROM
    against, what = (capacity_rps, "capacity") if overloaded else (offered_rps, "the offered rate")
    if goodput_rps is None or not against:
        return Verdict(Kind.NOT_JUDGED), ["no goodput recorded" if goodput_rps is None else f"no {what} known"]
    share = goodput_rps / against
    if share < COLLAPSE_SHARE:
        return Verdict(Kind.COLLAPSES), [f"goodput {share:.0%} of {what} < {COLLAPSE_SHARE:.0%}"]
    failed = [f"goodput {share:.0%} of {what} < {hold:.0%}"] if share < hold else []
    if overloaded:
        if p99_ok_ms is None or p99_ok_ms > objective_ms:
            failed.append("no 2xx answer" if p99_ok_ms is None else f"p99 of 2xx {p99_ok_ms:.0f} ms > {objective_ms:g} ms")
        if p99_shed_ms is not None and p99_shed_ms > SHED_P99_MS:
            failed.append(f"p99 of shed answers {p99_shed_ms:.1f} ms > {SHED_P99_MS:g} ms")
    return (Verdict(Kind.DEGRADES), failed) if failed else (Verdict(Kind.HOLDS), [])


def recorded_capacity(records: list[RunRecord]) -> Capacity | None:
    """The result set's capacity (its last `capacity` record that found one)."""
    found = [r for r in records if r.kind == "capacity" and r.capacity is not None and r.capacity.capacity_rps]
    if not found:
        return None
    r = found[-1]
    c = r.capacity
    assert c is not None and c.capacity_rps is not None
    return Capacity(c.capacity_rps, c.steps, c.confirmed, c.at_least, c.limited_by, c.slo_p99_ms, r.key)


def _not_negative(interval: Interval) -> Interval:
    """A rate's interval, its low end at 0 at least."""
    return Interval(interval.value, None if interval.low is None else max(0.0, interval.low), interval.high)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ms(latency_us: float) -> float:
    return latency_us / 1000


def _cell(summary: VariantSummary, name: str, capacity: Capacity | None, objective_ms: float, quick: bool) -> Cell:
    phases = summary.phases(name)
    multiple = next(p.offered_multiple for p in phases if p.offered_multiple is not None)
    goodputs = [p.goodput_rps for p in phases if p.goodput_rps is not None]
    offered = [p.offered_rps for p in phases if p.offered_rps is not None]
    expected = sum(p.arrivals.expected for p in phases if p.arrivals)
    sent = sum(p.arrivals.sent for p in phases if p.arrivals)
    others: Counter[str] = Counter()
    for p in phases:
        others.update({kind: n for kind, n in p.errors.items() if kind != SHED})
    goodput = _not_negative(mean_interval(goodputs)) if goodputs else None
    offered_rps = statistics.fmean(offered) if offered else None
    p99_ok = _median([_ms(p.latency_ok_us.p99) for p in phases if p.latency_ok_us is not None])
    p99_shed = _median([_ms(p.latency_shed_us.p99) for p in phases if p.latency_shed_us is not None])
    p99_shed_sent = _median([_ms(p.latency_shed_sent_us.p99) for p in phases if p.latency_shed_sent_us is not None])
    capacity_rps = capacity.rps if capacity else None
    refusal = p99_shed_sent if p99_shed_sent is not None else p99_shed  # how fast the server refused
    verdict, why = judge(multiple, goodput.value if goodput else None, offered_rps, capacity_rps, p99_ok, refusal,
                         objective_ms, quick)  # fmt: skip
    return Cell(
        mode=summary.config.admission,
        key=summary.key,
        phase=name,
        multiple=multiple,
        runs=len(phases),
        offered_rps=offered_rps,
        goodput=goodput,
        goodput_share=goodput.value / capacity_rps if goodput and capacity_rps else None,
        shed_share=sum(p.shed for p in phases) / expected if expected else None,
        p99_ok_ms=p99_ok,
        p99_shed_ms=p99_shed,
        p99_shed_sent_ms=p99_shed_sent,
        other_errors=dict(sorted(others.items())),
        cpu_ms=summary.phase_median(name, lambda p: p.server_cpu_ms_per_request),
        limited_by=summary.bottlenecks(name),
        attempts=1 + sum(p.retries for p in phases) / sent if sent else None,
        retried_ok=sum(p.retried_ok for p in phases),
        held_back=sum(p.held_back for p in phases),
        verdict=verdict,
        why=why,
    )


def _phase_names(summaries: list[VariantSummary]) -> list[str]:
    """The overload phases (those with a multiple), lowest multiple first."""
    multiples: dict[str, float] = {}
    for s in summaries:
        for r in s.runs:
            for p in r.phases:
                if p.offered_multiple is not None:
                    multiples[p.name] = p.offered_multiple
    return sorted(multiples, key=multiples.__getitem__)


def repeats_to_decide(test: PairedTest, margin: float, family: int = 1) -> int | None:
    """About how many repeats would show equivalence within ±margin, if the ratio and the spread stay as
    measured (normal approximation of two one-sided tests at the family-wise level, 80% power); None
    when more repeats would not: the ratio itself lies outside the margin, or there is no spread."""
    if test.ratio is None or test.sd is None or test.sd == 0:
        return None
    room = math.log1p(margin) - abs(math.log(test.ratio.value))
    if room <= 0:
        return None
    z = stats.norm.ppf(1 - ALPHA / max(1, family)) + stats.norm.ppf(POWER)
    return max(2, math.ceil((z * test.sd / room) ** 2))


def admission_costs(summaries: list[VariantSummary], phase: str, margin: float = COST_MARGIN) -> list[AdmissionCost]:
    """Each mode's server CPU per request in `phase` against no admission control (see the docstring)."""
    reference = next((s for s in summaries if s.config.admission == "none" and s.runs), None)
    if reference is None:
        return []
    paces = [p.pace_us for s in summaries for p in s.phases(phase) if p.pace_us]
    metric = server_cpu(phase, statistics.median(paces) if paces else None)
    family = Family(margin, summaries)
    comparisons = [family.add(s, reference, metric) for s in summaries if s is not reference and s.runs]
    family.decide()
    return [_cost(phase, c, margin, len(comparisons)) for c in comparisons]


def _cost(phase: str, comparison: Comparison, margin: float, family: int) -> AdmissionCost:
    test, mode = comparison.test, comparison.variant.config.admission
    outside = test.ratio is not None and abs(math.log(test.ratio.value)) >= math.log1p(margin)
    needed = repeats_to_decide(test, margin, family)
    return AdmissionCost(mode, phase, test.ratio, comparison.verdict, comparison.detectable, test.n, needed, outside)


def overload_findings(records: list[RunRecord]) -> OverloadFindings:
    """Everything the report's overload section shows, from the result set."""
    runs = [r for r in records if r.kind == "run"]
    bench = (runs or records)[0].bench
    capacity = recorded_capacity(records)
    load = bench.load
    found = OverloadFindings(capacity, load.objective_ms, bench.quick, load.retry_shed, load.max_retries)
    order = {mode: i for i, mode in enumerate(ADMISSIONS)}
    summaries = sorted((s for s in summarise(records).values() if s.runs), key=lambda s: order.get(s.config.admission, 99))
    found.modes = [s.config.admission for s in summaries]
    names = _phase_names(summaries)
    found.cells = [
        _cell(s, name, capacity, load.objective_ms, bench.quick) for name in names for s in summaries if s.phases(name)
    ]
    if names:
        found.costs = admission_costs(summaries, names[0])
    return found
