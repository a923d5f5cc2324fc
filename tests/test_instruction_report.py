"""The report of result sets that counted instructions: an instructions-only set (verdicts and the A/A
calibration on instructions per request, nothing timed shown), a set that timed and counted (instructions
beside CPU time, and where their verdicts disagree), and a time-only set (no trace of instructions)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import msgspec
import pytest

from reclab.analysis.findings import Discord, Findings, analyse, disagreement
from reclab.analysis.stats import PairedTest
from reclab.analysis.summary import INSTRUCTIONS_PER_REQUEST, VariantSummary
from reclab.analysis.verdicts import Comparison, Kind, Verdict
from reclab.report.build import build_report
from reclab.results.config import RunConfig
from reclab.results.record import InstructionCount, RunRecord
from reclab.run.matrix import BASELINE
from tests.records import section, write_results
from tests.synthetic import result_set

TORNADO = BASELINE.with_factor("framework", "tornado")
NO_CACHE = BASELINE.with_factor("cache", "none")
MOTOR = BASELINE.with_factor("driver", "motor")
BASE_INSTRUCTIONS = 30.5e6  # per request
WINDOW = 400  # requests counted per run


def counted(
    records: list[RunRecord], effects: dict[RunConfig, float], *, noise: float = 0.002, timed: bool, seed: int = 7
) -> list[RunRecord]:
    """The records with an instruction count each: `effects` multiplies a variant's instructions per
    request (the baseline and its A/A copy: 1), with a little noise per run; without `timed`, their
    timed phases are dropped (`reclab bench --measure instructions`)."""
    rng = random.Random(seed)
    out = []
    for r in records:
        effect = effects.get(r.config, 1.0) if r.role == "variant" else 1.0
        total = round(BASE_INSTRUCTIONS * effect * (1 + rng.gauss(0, noise)) * WINDOW)
        count = InstructionCount(
            total=total, requests=WINDOW, errors=0, start=500, connections=4, processes={"4100": total // 10,
            "4101": total - total // 10}, seconds=41.5, tool="valgrind-3.22.0 callgrind",
        )  # fmt: skip
        out.append(msgspec.structs.replace(r, instructions=count, phases=r.phases if timed else []))
    return out


def row_of(findings: Findings, config: RunConfig) -> Comparison:
    """The instruction verdict of the variant run with `config`."""
    row = next(r for r in findings.variants if r.summary.config == config and r.summary.role == "variant")
    assert row.instructions_verdict is not None
    return row.instructions_verdict


def cpu_of(findings: Findings, config: RunConfig) -> Comparison:
    row = next(r for r in findings.variants if r.summary.config == config and r.summary.role == "variant")
    assert row.verdict is not None
    return row.verdict


# -- (a) an instructions-only set ------------------------------------------------------------------------


@pytest.fixture
def counted_only() -> list[RunRecord]:
    """3 repeats: Tornado executes 5% more instructions per request, the cache and driver variants the same."""
    return counted(result_set({TORNADO: 1.0, MOTOR: 1.0, NO_CACHE: 1.0}, repeats=3), {TORNADO: 1.05}, timed=False)


def test_an_instructions_only_set_is_judged_on_instructions(counted_only: list[RunRecord]) -> None:
    assert all(r.phases == [] and r.ok for r in counted_only)
    f = analyse(counted_only)
    assert f.instructions_only and f.primary == INSTRUCTIONS_PER_REQUEST
    tornado = row_of(f, TORNADO)
    assert tornado.verdict.kind is Kind.SLOWER
    assert tornado.test.ratio is not None and 1.04 < tornado.test.ratio.value < 1.06
    assert row_of(f, MOTOR).verdict.kind is Kind.EQUIVALENT
    assert row_of(f, NO_CACHE).verdict.kind is Kind.EQUIVALENT
    assert f.aa is not None and f.aa.metric == INSTRUCTIONS_PER_REQUEST and f.aa.verdict.kind is Kind.EQUIVALENT
    assert f.reliable and f.aa_instructions is f.aa
    assert f.family_size == 3  # the three instruction verdicts: no CPU verdict or claim without data
    assert all(c.verdict is None for c in f.claims)
    assert f.offered == [] and f.database == [] and f.network == [] and f.history == {}
    assert not f.disagreements and f.judged_on_both == 0


def test_an_instructions_only_report_shows_what_it_has_and_says_what_it_did_not_measure(
    tmp_path: Path, counted_only: list[RunRecord]
) -> None:
    md, page = (path.read_text() for path in build_report(write_results(tmp_path, counted_only)))
    framework = section(md, "Factor: framework")
    assert "instructions/req [95% CI]" in framework and "server CPU ms/req" not in framework
    tornado = next(line for line in framework.splitlines() if line.startswith("| framework=tornado |"))
    assert re.search(r"\| 3\d\.\d\d M \[3\d\.\d\d, 3\d\.\d\d\] \| 1\.0[45]\d \[1\.0\d\d, 1\.0\d\d\] \| slower \|", tornado)
    motor = next(line for line in section(md, "Factor: driver").splitlines() if line.startswith("| driver=motor |"))
    assert "| equivalent within ±10% |" in motor
    assert "counted instructions only" in section(md, "The talk's claims vs what this run measured")
    assert "equivalent within ±10%" in section(md, "A/A calibration")
    assert "Caveats" not in md  # the A/A on instructions came out equivalent
    assert "user space" in section(md, "What instructions leave out")
    how = section(md, "How instructions were counted")
    assert "callgrind" in how and "| 400 |" in how and "41.5" in how
    assert "Where instructions and CPU time disagree" not in md  # nothing timed to disagree with
    for absent in ("Load as offered", "Database work per request", "Frameworks ranked", "Server-Timing"):
        assert absent not in md
    assert (tmp_path / "plots" / "instructions.png").exists()
    assert not (tmp_path / "plots" / "latency.png").exists()
    assert 'id="instructions-counted"' in page and 'data-chart="instructions"' in page


# -- (b) a set that timed and counted ---------------------------------------------------------------------


@pytest.fixture
def both() -> list[RunRecord]:
    """5 repeats, noisy CPU time: without a cache, 20% more server CPU per request, but the same
    instructions; Tornado and the motor driver unchanged on both."""
    timed = result_set({NO_CACHE: 1.2, TORNADO: 1.0, MOTOR: 1.0}, repeats=5, noise=0.05, seed=4)
    return counted(timed, {}, timed=True)


def test_instructions_stand_beside_cpu_time(tmp_path: Path, both: list[RunRecord]) -> None:
    f = analyse(both)
    assert not f.instructions_only and f.primary == f.metrics.cost
    assert cpu_of(f, NO_CACHE).verdict.kind is Kind.SLOWER
    assert row_of(f, NO_CACHE).verdict.kind is Kind.EQUIVALENT
    assert f.aa_instructions is not None and f.aa_instructions is not f.aa
    assert f.aa_instructions.verdict.kind is Kind.EQUIVALENT
    assert f.family_size > 6  # three variants on each metric, and the claims, in one family
    md = build_report(write_results(tmp_path, both))[0].read_text()
    cache = section(md, "Factor: cache")
    header = next(line for line in cache.splitlines() if line.startswith("| variant |"))
    assert header.index("server CPU ms/req") < header.index("instructions/req") < header.index("p50 ms (open)")
    assert "server instructions per request" in section(md, "A/A calibration")


def test_a_cpu_change_the_instructions_do_not_show_is_a_disagreement(tmp_path: Path, both: list[RunRecord]) -> None:
    f = analyse(both)
    found = {d.key: d for d in f.disagreements}
    assert NO_CACHE.key in found and found[NO_CACHE.key].discord is Discord.EQUIVALENT
    md = build_report(write_results(tmp_path, both))[0].read_text()
    listed = section(md, "Where instructions and CPU time disagree")
    line = next(line for line in listed.splitlines() if line.startswith(f"| {NO_CACHE.key} |"))
    assert "| slower 1.1" in line or "| slower 1.2" in line
    assert "| equivalent 1.00" in line or "| equivalent 0.99" in line
    assert "outside the instructions" in line
    assert "do not disagree" not in listed


def test_agreeing_verdicts_are_said_to_agree_in_one_line(tmp_path: Path) -> None:
    records = counted(result_set({NO_CACHE: 1.5, MOTOR: 1.0}, repeats=5, noise=0.01), {NO_CACHE: 1.5}, timed=True)
    md = build_report(write_results(tmp_path, records))[0].read_text()
    listed = section(md, "Where instructions and CPU time disagree").strip()
    assert listed == "Server CPU time and instructions per request do not disagree on any of the 2 variants judged on both."


def _comparison(kind: Kind) -> Comparison:
    summary = VariantSummary("v", BASELINE)
    return Comparison(summary, summary, INSTRUCTIONS_PER_REQUEST, PairedTest(3, None, None, None, None), Verdict(kind))


@pytest.mark.parametrize(
    ("cpu", "instructions", "expected"),
    [
        (Kind.SLOWER, Kind.FASTER, Discord.OPPOSITE),
        (Kind.FASTER, Kind.SLOWER, Discord.OPPOSITE),
        (Kind.SLOWER, Kind.EQUIVALENT, Discord.EQUIVALENT),
        (Kind.EQUIVALENT, Kind.FASTER, Discord.EQUIVALENT),
        (Kind.INCONCLUSIVE, Kind.SLOWER, Discord.UNDECIDED),
        (Kind.FASTER, Kind.INCONCLUSIVE, Discord.UNDECIDED),
        (Kind.SLOWER, Kind.SLOWER, None),
        (Kind.EQUIVALENT, Kind.EQUIVALENT, None),
        (Kind.EQUIVALENT, Kind.INCONCLUSIVE, None),
        (Kind.NOT_JUDGED, Kind.SLOWER, None),
    ],
)
def test_what_counts_as_a_disagreement(cpu: Kind, instructions: Kind, expected: Discord | None) -> None:
    assert disagreement(_comparison(cpu), _comparison(instructions)) is expected


# -- (c) a time-only set -----------------------------------------------------------------------------------


def test_a_time_only_report_has_no_trace_of_instructions(tmp_path: Path) -> None:
    records = result_set({NO_CACHE: 1.2, MOTOR: 1.0}, repeats=3)
    f = analyse(records)
    assert f.metrics.instructions is None and f.aa_instructions is None and not f.windows
    assert all(row.instructions is None and row.instructions_verdict is None for row in f.variants)
    md, page = (path.read_text() for path in build_report(write_results(tmp_path, records)))
    assert "instruction" not in md.lower()
    assert 'id="instructions-counted"' not in page and 'id="disagreements"' not in page
    assert not (tmp_path / "plots" / "instructions.png").exists()
