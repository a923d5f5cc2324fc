"""The talk's claims as data, and their verdicts on a result set.

A claim compares two variants, each given as changes to the baseline's configuration; claims about
speed of requests are judged on open-loop latency (below saturation), claims about the server on
its CPU per request, claims about throughput on capacity. A latency claim is judged only where both
variants' latency phase ran below saturation in every run (`flags.saturation`): else it is not
judged, and the report says why. A claim comes out supported, partly supported, contradicted, or
undecided (its comparison's verdict says why: inconclusive, not judged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reclab.analysis.summary import Metric, Metrics, VariantSummary
from reclab.analysis.verdicts import Comparison, Family, Kind, Tone, Verdict

TALK = {"framework": "tornado", "loop": "asyncio"}  # the Tornado the talk ran: on asyncio's own loop
LIKE = {"framework": "tornado"}  # Tornado on the baseline's loop


@dataclass(frozen=True)
class Claim:
    text: str
    better: dict[str, Any]  # the variant the talk says is better: changes to the baseline
    other: dict[str, Any]
    metric: str  # which of the result set's Metrics: cost, capacity, p50, db_time
    what: str  # what the ratio is (better / other), for the reader
    magnitude: float | None = None  # the ratio the claim states, if it states one


def claims(delays: list[float | None]) -> list[Claim]:
    """The talk's claims; gather vs sequential once per emulated delay in the result set."""
    out = [
        Claim("Sanic gives more than 2x Tornado's throughput — as the talk ran it (Sanic on uvloop, Tornado on "
              "asyncio's loop)", {}, TALK, "capacity", "Sanic / Tornado capacity", 2.0),
        Claim("Sanic gives more than 2x Tornado's throughput — like for like (both on the baseline's loop)", {}, LIKE,
              "capacity", "Sanic / Tornado capacity", 2.0),
        Claim("Sanic needs at most half of Tornado's server CPU per request — as the talk ran it", {}, TALK, "cost",
              "Sanic / Tornado server CPU per request", 0.5),
        Claim("Sanic needs at most half of Tornado's server CPU per request — like for like", {}, LIKE, "cost",
              "Sanic / Tornado server CPU per request", 0.5),
    ]  # fmt: skip
    for delay in delays:
        at = {} if delay is None else {"delay_ms": delay}
        where = "directly" if delay is None else f"at {delay:g} ms of emulated delay"
        out.append(Claim(f"gathering independent calls makes requests faster ({where})", {"strategy": "gather", **at},
                         {"strategy": "sequential", **at}, "p50", "gather / sequential p50 latency"))  # fmt: skip
    out.append(Claim("grouping in the app is several times faster than MongoDB's $group", {"grouping": "app"},
                     {"grouping": "db"}, "db_time", "app / db database time per request", 0.5))  # fmt: skip
    for cache in ("redis", "local", "two-level"):
        out.append(Claim(f"caching ({cache}) makes requests faster than no cache", {"cache": cache}, {"cache": "none"},
                         "p50", f"{cache} / none p50 latency"))  # fmt: skip
    return out


class Support(StrEnum):
    """How far a result set supports a claim."""

    SUPPORTED = "supported"
    PARTLY = "partly: right direction, smaller than claimed"
    CONTRADICTED = "contradicted"
    UNDECIDED = "undecided"  # its comparison's verdict says why (inconclusive, not judged)
    NOT_MEASURED = "not measured in this result set"


@dataclass(frozen=True)
class ClaimOutcome:
    """A claim's outcome, with the verdict it quotes (`contradicted: equivalent within ±10%`)."""

    support: Support
    verdict: Verdict | None = None

    @property
    def text(self) -> str:
        if self.verdict is None:
            return self.support.value
        if self.support is Support.UNDECIDED:
            return self.verdict.text
        return f"{self.support.value}: {self.verdict.text}"

    def __str__(self) -> str:
        return self.text

    @property
    def tone(self) -> Tone:
        """Good when supported; bad when the opposite was measured (an equivalence contradicts it, neutrally)."""
        if self.support is Support.SUPPORTED:
            return Tone.GOOD
        if self.support is Support.CONTRADICTED and self.verdict is None:
            return Tone.BAD
        return Tone.NEUTRAL


@dataclass
class ClaimFinding:
    claim: Claim
    verdict: Comparison | None  # None: a variant the claim needs is not in the result set
    outcome: ClaimOutcome = ClaimOutcome(Support.NOT_MEASURED)
    notes: list[str] = field(default_factory=list)


def find(summaries: dict[str, VariantSummary], baseline: VariantSummary, changes: dict[str, Any]) -> VariantSummary | None:
    """The variant whose configuration is the baseline's with `changes` (the baseline itself for none)."""
    config = baseline.config
    for factor, level in changes.items():
        config = config.with_factor(factor, level)
    if config == baseline.config:
        return baseline
    return next((s for s in summaries.values() if s.config == config and s.role == "variant" and s.runs), None)


def add_claims(
    family: Family, summaries: dict[str, VariantSummary], baseline: VariantSummary, metrics: Metrics
) -> list[ClaimFinding]:
    """Every claim of `claims()` as a comparison in `family` (decided later with the rest)."""
    delays = sorted({s.config.delay_ms for s in summaries.values()}, key=lambda d: -1.0 if d is None else d)
    findings = []
    for claim in claims(delays):
        better, other = find(summaries, baseline, claim.better), find(summaries, baseline, claim.other)
        metric: Metric | None = getattr(metrics, claim.metric)
        if better is None or other is None or metric is None:
            findings.append(ClaimFinding(claim, None))
            continue
        note = saturation_note(metric, (better, other), metrics) if claim.metric in ("p50", "db_time") else ""
        findings.append(ClaimFinding(claim, family.add(better, other, metric, note=note)))
    return findings


def saturation_note(metric: Metric, variants: tuple[VariantSummary, ...], metrics: Metrics) -> str:
    """Why latency read from `metric`'s phase cannot be compared (empty: it can): a variant's phase was
    not below saturation in some run."""
    for summary in variants:
        saturated = summary.saturated(metric.phase, metrics.capacity)
        if saturated:
            why = ", ".join(sorted({reason for reasons in saturated for reason in reasons}))
            runs = f"{len(saturated)} of {len(summary.runs)} runs"
            return f"`{metric.phase}` was not below saturation for {summary.key} in {runs} ({why})"
    return ""


def settle(finding: ClaimFinding) -> None:
    """The claim's outcome once its comparison is decided."""
    comparison = finding.verdict
    if comparison is None:
        return
    said, ratio, magnitude = comparison.verdict, comparison.test.ratio, finding.claim.magnitude
    if said.kind is Kind.FASTER:
        higher = comparison.metric.higher_is_better
        short = magnitude is not None and ratio is not None and (ratio.value < magnitude if higher else ratio.value > magnitude)
        finding.outcome = ClaimOutcome(Support.PARTLY if short else Support.SUPPORTED)
    elif said.kind is Kind.SLOWER:
        finding.outcome = ClaimOutcome(Support.CONTRADICTED)
    elif said.kind is Kind.EQUIVALENT:
        finding.outcome = ClaimOutcome(Support.CONTRADICTED, said)
    else:
        finding.outcome = ClaimOutcome(Support.UNDECIDED, said)
