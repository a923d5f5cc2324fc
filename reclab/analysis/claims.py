"""The talk's claims as data, and their verdicts on a result set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reclab.analysis.stats import Interval, paired_ratio, verdict
from reclab.analysis.summary import DB_TIME, LATENCY, SERVER_CPU, THROUGHPUT, Metric, VariantSummary


@dataclass(frozen=True)
class Claim:
    text: str
    factor: str
    better: Any  # the level the talk says is better
    other: Any
    metric: Metric
    what: str  # what the ratio is, for the reader ("{delay}" is the baseline's emulated delay)
    magnitude: float | None = None  # the ratio the claim states, if it states one


CLAIMS = (
    Claim("Sanic gives more than 2x Tornado's throughput", "framework", "sanic", "tornado", THROUGHPUT,
          "Sanic / Tornado req/s", 2.0),
    Claim("Sanic needs at most half of Tornado's server CPU per request (the 2x claim in CPU terms)", "framework",
          "sanic", "tornado", SERVER_CPU, "Sanic / Tornado server CPU ms per request", 0.5),
    Claim("gathering independent calls makes requests faster", "strategy", "gather", "sequential", LATENCY["p50"],
          "gather / sequential p50 at {delay} ms emulated network delay"),
    Claim("grouping in the app is several times faster than MongoDB's $group", "grouping", "app", "db", DB_TIME,
          "app / db database time per request", 0.5),
    *[Claim(f"caching ({cache}) makes the server faster than no cache", "cache", cache, "none", THROUGHPUT,
            f"{cache} / none req/s") for cache in ("redis", "local", "two-level")],
)  # fmt: skip


@dataclass(frozen=True)
class ClaimFinding:
    claim: Claim
    what: str
    ratio: Interval | None
    verdict: str  # supported | partly ... | contradicted | inconclusive
    measured: bool = True  # False: a level the claim compares is missing from the result set


def claim_verdict(ratio: Interval | None, higher_is_better: bool, magnitude: float | None) -> str:
    """supported / contradicted / inconclusive; "partly" when the direction holds but not the stated size."""
    said = verdict(ratio, higher_is_better)
    if ratio is None or said not in ("faster", "slower"):
        return "inconclusive" if said == "no significant difference" else said
    if said == "slower":
        return "contradicted"
    if magnitude is not None and (ratio.value < magnitude if higher_is_better else ratio.value > magnitude):
        return "partly: right direction, smaller than claimed"
    return "supported"


def level_summary(
    summaries: dict[str, VariantSummary], baseline: VariantSummary, factor: str, level: Any
) -> VariantSummary | None:
    """The variant that differs from the baseline in `factor` only, at `level` (or the baseline itself)."""
    if baseline.config.level(factor) == level:
        return baseline
    for s in summaries.values():
        if s.config.differing_factors(baseline.config) == [factor] and s.config.level(factor) == level:
            return s
    return None


def evaluate_claims(summaries: dict[str, VariantSummary], baseline: VariantSummary | None) -> list[ClaimFinding]:
    findings = []
    delay = f"{baseline.config.delay_ms:g}" if baseline else "0"
    for claim in CLAIMS:
        what = claim.what.format(delay=delay)
        better = level_summary(summaries, baseline, claim.factor, claim.better) if baseline else None
        other = level_summary(summaries, baseline, claim.factor, claim.other) if baseline else None
        if better is None or other is None or not better.runs or not other.runs:
            findings.append(ClaimFinding(claim, what, None, "–", measured=False))
            continue
        ratio = paired_ratio(better.by_repeat(claim.metric), other.by_repeat(claim.metric))
        findings.append(ClaimFinding(claim, what, ratio, claim_verdict(ratio, claim.metric.higher_is_better, claim.magnitude)))
    return findings
