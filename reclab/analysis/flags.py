"""Every flag threshold of the lab, the flags a run gets, and the warnings a result set gives."""

from __future__ import annotations

from reclab.analysis.summary import THROUGHPUT, VariantSummary, machine_speeds
from reclab.results.record import Measurement, RunRecord

GENERATOR_SATURATED = 0.85  # share of its cores above which the load generator is flagged
SCHEDULE_LAG = 0.01  # open loop: share of requests sent late above which the run is flagged
HIGH_VARIANCE_CV = 0.10  # coefficient of variation of throughput over repeats above which a variant is flagged
MACHINE_DRIFT = 0.10  # spread of the machine speed index above which the report warns
CEILING_SHARE = 0.7  # a variant above this share of the generator's ceiling may be limited by the generator


def run_flags(m: Measurement, mode: str, missing_processes: int) -> list[str]:
    """What is wrong with one run's measurement, as short names."""
    flags = []
    if m.error_count:
        flags.append("errors")
    if m.generator_cpu_share > GENERATOR_SATURATED:
        flags.append("generator_saturated")
    if mode == "open" and m.requests_sent and m.late_starts / m.requests_sent > SCHEDULE_LAG:
        flags.append("schedule_lag")
    if missing_processes:
        flags.append("generator_lost")
    if m.unfinished:
        flags.append("unfinished_requests")
    return flags


def warnings(records: list[RunRecord], summaries: dict[str, VariantSummary]) -> list[tuple[str, str]]:
    """(what, why) for every flagged run, high-variance variant, generator-limited variant and
    drifting machine."""
    out = [*_flagged_runs(records), *_high_variance(summaries), *_near_ceiling(records, summaries)]
    speeds = machine_speeds(records)
    if speeds and max(speeds) / min(speeds) > 1 + MACHINE_DRIFT:
        out.append(("machine", f"the machine's own speed varied {max(speeds) / min(speeds) - 1:.0%} across runs"))
    return out


def _flagged_runs(records: list[RunRecord]) -> list[tuple[str, str]]:
    out = []
    for record in records:
        if record.kind != "run" and record.status == "ok":
            continue  # the ceiling run saturates its generator by design; the warm-up run is unscored
        if record.flags:
            why = ", ".join(record.flags) + (f": {record.error}" if record.error else "")
            if record.measured and record.measured.errors:
                why += f" ({', '.join(f'{k} x{v}' for k, v in record.measured.errors.items())})"
            out.append((f"{record.key or record.kind} (repeat {record.repeat + 1})", why))
    return out


def _high_variance(summaries: dict[str, VariantSummary]) -> list[tuple[str, str]]:
    out = []
    for key, summary in summaries.items():
        cv = summary.cv()
        if cv is not None and cv > HIGH_VARIANCE_CV:
            out.append((key, f"high variance: throughput varies {cv:.0%} (coefficient of variation) over repeats"))
    return out


def _near_ceiling(records: list[RunRecord], summaries: dict[str, VariantSummary]) -> list[tuple[str, str]]:
    out = []
    for ceiling in ceilings(records):
        limit = THROUGHPUT.read(ceiling) * CEILING_SHARE  # type: ignore[operator]
        for key, summary in summaries.items():
            tp = summary.throughput()
            if tp and tp.value > limit:
                out.append(
                    (
                        key,
                        f"throughput {tp.value:.0f} req/s is above {CEILING_SHARE:.0%} of the generator's "
                        f"ceiling ({ceiling.throughput_rps:.0f}): the generator may limit it",
                    )
                )
    return out


def ceilings(records: list[RunRecord]) -> list[Measurement]:
    """The measured generator ceiling(s) of a result set."""
    return [r.measured for r in records if r.kind == "ceiling" and r.measured is not None]
