"""A report's family of verdicts: each a paired comparison of two variants on one metric, decided
together so that the family's chance of one spurious verdict stays at 5% (Holm).

Method, as the report states it: per repeat, the ratio of the two variants' figures (both ran in
the same repeat); on the log scale, a t test says whether the mean ratio differs from 1, and two
one-sided tests whether it lies within 1 ± the equivalence margin, with the run-to-run spread pooled
over every variant (a randomized block design: repeats are blocks, variants run in random order). Both families of p-values are
adjusted with Holm's method. A verdict reads `faster` / `slower` (the difference holds), `equivalent
within ±X%` (the equivalence holds), or `inconclusive` (neither); a comparison the result set cannot
support (a latency claim on a phase that was not below saturation) reads `not judged: <why>` and is
left out of the family. For each comparison the report
also gives the smallest change the run could have detected (80% power, family-wise level).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reclab.analysis.stats import PairedTest, Pool, decide, detectable_change, holm, paired_test, pooled_spread
from reclab.analysis.summary import Metric, VariantSummary

MARGIN = 0.10  # default equivalence margin: ratios within 1 ± 10% are "equivalent" (the A/A resolution of a 2-core VM)


@dataclass
class Verdict:
    variant: VariantSummary
    reference: VariantSummary
    metric: Metric
    test: PairedTest
    verdict: str = "inconclusive"
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
    verdicts: list[Verdict] = field(default_factory=list)
    mirrors: list[tuple[Verdict, Verdict]] = field(default_factory=list)  # (seen from the other side, original)
    pools: dict[str, Pool | None] = field(default_factory=dict)

    def add(self, variant: VariantSummary, reference: VariantSummary, metric: Metric, note: str = "") -> Verdict:
        """The comparison of `variant` to `reference` on `metric` (the same one if already asked for)."""
        for known in self.verdicts:
            if known.metric == metric and {known.variant.key, known.reference.key} == {variant.key, reference.key}:
                if known.variant.key == variant.key:
                    return known
                return self._inverse(known)
        test = paired_test(
            variant.by_repeat(metric), reference.by_repeat(metric), self.margin, self.pool(metric), reference.runs_per_repeat
        )
        verdict = Verdict(variant, reference, metric, test, note=note)
        self.verdicts.append(verdict)
        return verdict

    def pool(self, metric: Metric) -> Pool | None:
        """The metric's run-to-run spread pooled over every variant (None without enough of them)."""
        if metric.name not in self.pools:
            series = [{r.repeat: v for r in s.runs if (v := metric.of(r)) is not None} for s in self.summaries if s.runs]
            self.pools[metric.name] = pooled_spread(series)
        return self.pools[metric.name]

    def _inverse(self, known: Verdict) -> Verdict:
        """The same comparison seen from the other side (its ratio inverted, decided with it)."""
        mirror = Verdict(known.reference, known.variant, known.metric, known.test.inverted())
        self.mirrors.append((mirror, known))
        return mirror

    def decide(self) -> None:
        """Holm across the judged comparisons, then each verdict and detectable change."""
        judged = [v for v in self.verdicts if v.judged]
        diffs = holm([v.test.p_diff for v in judged])
        equivs = holm([v.test.p_equiv for v in judged])
        for verdict, p_diff, p_equiv in zip(judged, diffs, equivs, strict=True):
            verdict.verdict = decide(verdict.test, p_diff, p_equiv, self.margin, verdict.metric.higher_is_better)
            verdict.detectable = detectable_change(verdict.test, len(judged))
        for verdict in self.verdicts:
            if not verdict.judged:
                verdict.verdict = f"not judged: {verdict.note}"
        for mirror, known in self.mirrors:
            mirror.verdict = _mirrored(known.verdict)
            mirror.detectable = known.detectable
            mirror.note = known.note

    def size(self) -> int:
        return sum(1 for v in self.verdicts if v.judged)


def _mirrored(verdict: str) -> str:
    return {"faster": "slower", "slower": "faster"}.get(verdict, verdict)


def judge_alone(
    variant: VariantSummary, reference: VariantSummary, metric: Metric, summaries: list[VariantSummary], margin: float = MARGIN
) -> Verdict:
    """One comparison decided on its own (the A/A calibration is not part of the report's family)."""
    family = Family(margin, summaries)
    verdict = family.add(variant, reference, metric)
    family.decide()
    return verdict
