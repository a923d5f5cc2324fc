"""Verdicts, and a report's family of them: each a paired comparison of two variants on one metric,
decided together so that the family's chance of one spurious verdict stays at 5% (Holm).

Method, as the report states it: per repeat, the ratio of the two variants' figures (both ran in
the same repeat); on the log scale, a t test says whether the mean ratio differs from 1, and two
one-sided tests whether it lies within 1 ± the equivalence margin, with the run-to-run spread pooled
over every variant (a randomized block design: repeats are blocks, variants run in random order). Both families of p-values are
adjusted with Holm's method. A verdict reads `faster` / `slower` (the difference holds), `equivalent
within ±X%` (the equivalence holds), or `inconclusive` (neither); a comparison the result set cannot
support (a latency claim on a phase that was not below saturation) reads `not judged: <why>` and is
left out of the family. For each comparison the report
also gives the smallest change the run could have detected (80% power, family-wise level).

The overload matrix judges an admission control at one offered load with the same `Verdict` type:
`holds`, `degrades` or `collapses` (`reclab.analysis.overload`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from reclab.analysis.stats import ALPHA, PairedTest, Pool, detectable_change, holm, paired_test, pooled_spread
from reclab.analysis.summary import Metric, VariantSummary

MARGIN = 0.10  # default equivalence margin: ratios within 1 ± 10% are "equivalent" (the A/A resolution of a 2-core VM)


class Kind(StrEnum):
    """What a verdict says, in the order verdicts are counted."""

    FASTER = "faster"  # a comparison: the difference holds, in the variant's favour
    SLOWER = "slower"
    EQUIVALENT = "equivalent"  # within ± the margin
    INCONCLUSIVE = "inconclusive"
    HOLDS = "holds"  # an admission control under overload
    DEGRADES = "degrades"
    COLLAPSES = "collapses"
    NOT_JUDGED = "not judged"  # a comparison or an admission control the result set cannot support


class Tone(StrEnum):
    """How a judgement reads for what was judged: good, bad, or neither (a report colours the first two)."""

    GOOD = "good"
    BAD = "bad"
    NEUTRAL = "neutral"


@dataclass(frozen=True)
class Verdict:
    """A verdict: its kind, the margin of an equivalence, and why, for an inconclusive or unjudged one."""

    kind: Kind
    margin: float = 0.0  # equivalent: within ± this fraction
    why: str = ""  # inconclusive, not judged: the reason, shown after the kind

    @property
    def text(self) -> str:
        """As reports show it: `faster`, `equivalent within ±10%`, `inconclusive (fewer than 2 repeats)`, ..."""
        if self.kind is Kind.EQUIVALENT:
            return f"equivalent within ±{self.margin:.0%}"
        if self.kind is Kind.INCONCLUSIVE and self.why:
            return f"inconclusive ({self.why})"
        if self.kind is Kind.NOT_JUDGED and self.why:
            return f"not judged: {self.why}"
        return self.kind.value

    def __str__(self) -> str:
        return self.text

    def flipped(self) -> Verdict:
        """The same verdict seen from the other side of the comparison: faster and slower swap."""
        swapped = {Kind.FASTER: Kind.SLOWER, Kind.SLOWER: Kind.FASTER}
        return replace(self, kind=swapped.get(self.kind, self.kind))

    @property
    def tone(self) -> Tone:
        """Good: faster, holds; bad: slower, collapses; anything else neither."""
        if self.kind in (Kind.FASTER, Kind.HOLDS):
            return Tone.GOOD
        if self.kind in (Kind.SLOWER, Kind.COLLAPSES):
            return Tone.BAD
        return Tone.NEUTRAL


def decide(test: PairedTest, p_diff: float | None, p_equiv: float | None, margin: float, higher_is_better: bool) -> Verdict:
    """faster | slower | equivalent within ±X% | inconclusive, from (adjusted) p-values."""
    if test.ratio is None or p_diff is None:
        return Verdict(Kind.INCONCLUSIVE, why="fewer than 2 repeats" if test.n < 2 else "")
    if p_diff < ALPHA:
        better = test.ratio.value > 1 if higher_is_better else test.ratio.value < 1
        return Verdict(Kind.FASTER if better else Kind.SLOWER)
    if p_equiv is not None and p_equiv < ALPHA:
        return Verdict(Kind.EQUIVALENT, margin)
    return Verdict(Kind.INCONCLUSIVE)


@dataclass
class Comparison:
    """One variant against a reference on one metric, and the verdict on it once its family is decided."""

    variant: VariantSummary
    reference: VariantSummary
    metric: Metric
    test: PairedTest
    verdict: Verdict = Verdict(Kind.INCONCLUSIVE)  # until its family is decided
    detectable: float | None = None  # smallest change (fraction) the run could detect
    note: str = ""  # why the comparison was left out of the family, if it was

    @property
    def judged(self) -> bool:
        return not self.note


@dataclass
class Family:
    """Comparisons made for one report, decided together."""

    margin: float = MARGIN
    summaries: list[VariantSummary] = field(default_factory=list)  # every variant, for the pooled spread
    comparisons: list[Comparison] = field(default_factory=list)
    mirrors: list[tuple[Comparison, Comparison]] = field(default_factory=list)  # (seen from the other side, original)
    pools: dict[str, Pool | None] = field(default_factory=dict)

    def add(self, variant: VariantSummary, reference: VariantSummary, metric: Metric, note: str = "") -> Comparison:
        """The comparison of `variant` to `reference` on `metric` (the same one if already asked for)."""
        for known in self.comparisons:
            if known.metric == metric and {known.variant.key, known.reference.key} == {variant.key, reference.key}:
                if known.variant.key == variant.key:
                    return known
                return self._inverse(known)
        test = paired_test(
            variant.by_repeat(metric), reference.by_repeat(metric), self.margin, self.pool(metric), reference.runs_per_repeat
        )
        comparison = Comparison(variant, reference, metric, test, note=note)
        self.comparisons.append(comparison)
        return comparison

    def pool(self, metric: Metric) -> Pool | None:
        """The metric's run-to-run spread pooled over every variant (None without enough of them)."""
        if metric.name not in self.pools:
            series = [{r.repeat: v for r in s.runs if (v := metric.of(r)) is not None} for s in self.summaries if s.runs]
            self.pools[metric.name] = pooled_spread(series)
        return self.pools[metric.name]

    def _inverse(self, known: Comparison) -> Comparison:
        """The same comparison seen from the other side (its ratio inverted, decided with it)."""
        mirror = Comparison(known.reference, known.variant, known.metric, known.test.inverted())
        self.mirrors.append((mirror, known))
        return mirror

    def decide(self) -> None:
        """Holm across the judged comparisons, then each verdict and detectable change."""
        judged = [c for c in self.comparisons if c.judged]
        diffs = holm([c.test.p_diff for c in judged])
        equivs = holm([c.test.p_equiv for c in judged])
        for comparison, p_diff, p_equiv in zip(judged, diffs, equivs, strict=True):
            comparison.verdict = decide(comparison.test, p_diff, p_equiv, self.margin, comparison.metric.higher_is_better)
            comparison.detectable = detectable_change(comparison.test, len(judged))
        for comparison in self.comparisons:
            if not comparison.judged:
                comparison.verdict = Verdict(Kind.NOT_JUDGED, why=comparison.note)
        for mirror, known in self.mirrors:
            mirror.verdict = known.verdict.flipped()
            mirror.detectable = known.detectable
            mirror.note = known.note

    def size(self) -> int:
        return sum(1 for c in self.comparisons if c.judged)


def judge_alone(
    variant: VariantSummary, reference: VariantSummary, metric: Metric, summaries: list[VariantSummary], margin: float = MARGIN
) -> Comparison:
    """One comparison decided on its own (the A/A calibration is not part of the report's family)."""
    family = Family(margin, summaries)
    comparison = family.add(variant, reference, metric)
    family.decide()
    return comparison
