"""The regression gate (`reclab report --compare OLD NEW`) on synthetic result sets: it judges each
variant's ratio to its own baseline, so a slower machine passes and a slower variant fails; what the
data cannot decide at their repeats is `undecided` (exit 3), never `ok`; where both sets counted
instructions, they decide, and CPU and capacity can still object."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import msgspec
import pytest

from reclab.analysis.compare import MAX_REPEATS, Change, Outcome, _decided, compare, needs_text, outcomes, repeats_needed
from reclab.analysis.stats import Interval
from reclab.cli import main
from reclab.results.file import ResultsFile
from reclab.results.record import InstructionCount, RunRecord
from reclab.run.matrix import BASELINE, build_matrix
from tests.records import record
from tests.synthetic import BASE_CPU_MS, BASE_P50_MS, BASE_RPS, result_set, with_bench

TORNADO = BASELINE.with_factor("framework", "tornado")
NO_CACHE = BASELINE.with_factor("cache", "none")
MOTOR = BASELINE.with_factor("driver", "motor")
EFFECTS = {TORNADO: 1.3, NO_CACHE: 8.0, MOTOR: 1.05}


def write(folder: Path, records: list[RunRecord]) -> Path:
    results = ResultsFile(folder / "results.jsonl")
    for r in records:
        results.append(r)
    return folder


def gate(tmp_path: Path, old: list[RunRecord], new: list[RunRecord]) -> int:
    return main(["report", "--compare", str(write(tmp_path / "old", old)), str(write(tmp_path / "new", new))])


def test_a_uniform_7_percent_slowdown_of_every_variant_passes(tmp_path: Path) -> None:
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(EFFECTS, seed=2, slowdown=1.07)) == 0


def test_one_variant_15_percent_slower_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slower = {**EFFECTS, MOTOR: EFFECTS[MOTOR] * 1.15}
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(slower, seed=2)) == 1
    captured = capsys.readouterr()
    assert MOTOR.key in captured.err and TORNADO.key not in captured.err


def test_a_variant_missing_in_new_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    without = {k: v for k, v in EFFECTS.items() if k != TORNADO}
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(without, seed=2)) == 1
    assert "missing in NEW" in capsys.readouterr().out


def test_fewer_than_3_good_repeats_are_undecided(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(EFFECTS, seed=2, repeats=2)) == 3
    captured = capsys.readouterr()
    assert "cannot judge" in captured.out and f"{MOTOR.key} (needs 3 repeats)" in captured.err


def test_sets_that_are_not_like_for_like_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other_stream = with_bench(result_set(EFFECTS, seed=2), stream_hash="another")
    assert gate(tmp_path, result_set(EFFECTS, seed=1), other_stream) == 2
    err = capsys.readouterr().err
    assert "not like for like" in err and "stream (s vs another)" in err


# -- realistic spreads: the ofat matrix, 3 repeats, CPU noise of 8% a run, instructions of 0.3% --------

OFAT = build_matrix("ofat")  # the baseline, its A/A copy and 11 variants
COSTS = {entry.key: 1.0 if entry.role != "variant" else random.Random(i).uniform(0.7, 2.5) for i, entry in enumerate(OFAT)}
CPU_NOISE, INSTRUCTIONS_NOISE = 0.08, 0.003
BASE_INSTRUCTIONS, WINDOW = 2_000_000, 5_000
DOCTORED = OFAT[5].key


def ofat_set(
    *,
    repeats: int = 3,
    noise: float = CPU_NOISE,
    instructions: bool = False,
    timed: bool = True,
    drift: float = 1.0,
    seed: int = 1,
) -> list[RunRecord]:
    """An ofat result set: each run's server CPU per request and capacity its variant's cost (`COSTS`)
    times a machine factor common to its repeat, with lognormal noise `noise`; with `instructions`, each
    run's instructions per request too (noise INSTRUCTIONS_NOISE); `timed=False`: instructions only, no
    phases. `drift` moves every measure of every run alike (capacity the other way)."""
    rng = random.Random(seed)
    runs = []
    for repeat in range(repeats):
        machine = drift * math.exp(rng.gauss(0, 0.03))
        for order, entry in enumerate(OFAT):
            cost = COSTS[entry.key]
            cpu, slow = (cost * machine * math.exp(rng.gauss(0, noise)) for _ in range(2))
            run = record(entry.config, repeat, BASE_RPS / slow, BASE_P50_MS * slow, BASE_CPU_MS * cpu, entry.role, order)
            counted = None
            if instructions:
                per_request = BASE_INSTRUCTIONS * cost * drift * math.exp(rng.gauss(0, INSTRUCTIONS_NOISE))
                counted = InstructionCount(total=round(per_request * WINDOW), requests=WINDOW, start=200, connections=4)
            runs.append(msgspec.structs.replace(run, instructions=counted, phases=run.phases if timed else []))
    return runs


def doctored(records: list[RunRecord], key: str, instructions: float = 1.0) -> list[RunRecord]:
    """The records with one variant's server CPU per request x1.5 and its capacity x0.65 (and its
    instructions multiplied by `instructions`)."""
    out = []
    for r in records:
        if r.key == key:
            phases = [msgspec.structs.replace(p, server_cpu_ms_per_request=(p.server_cpu_ms_per_request or 0) * 1.5,
                                              throughput_rps=p.throughput_rps * 0.65) for p in r.phases]  # fmt: skip
            counted = r.instructions
            if counted is not None:
                counted = msgspec.structs.replace(counted, total=round(counted.total * instructions))
            r = msgspec.structs.replace(r, phases=phases, instructions=counted)
        out.append(r)
    return out


def test_a_variant_made_worse_on_cpu_and_capacity_is_not_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = ofat_set()
    new = doctored(old, DOCTORED)
    changes = [c for c in compare(old, new) if c.key == DOCTORED]
    assert [c.change.value for c in changes if c.change] == pytest.approx([1.5, 0.65])
    assert outcomes(changes)[DOCTORED] is not Outcome.OK
    assert gate(tmp_path, old, new) != 0
    assert DOCTORED in capsys.readouterr().err


def test_with_instructions_a_change_they_do_not_show_is_still_not_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = ofat_set(instructions=True)
    new = doctored(old, DOCTORED)  # the instructions unchanged
    changes = compare(old, new)
    verdicts = outcomes(changes)
    assert verdicts[DOCTORED] is not Outcome.OK
    assert all(v is Outcome.OK for key, v in verdicts.items() if key != DOCTORED)
    mine = [c for c in changes if c.key == DOCTORED]
    assert (mine[0].metric.counted, mine[0].primary, mine[0].outcome) == (True, True, Outcome.OK)
    assert any("the instructions do not show" in c.why for c in mine if c.outcome is Outcome.UNDECIDED)
    assert gate(tmp_path, old, new) in (1, 3)
    assert "| secondary |" in capsys.readouterr().out


def test_with_instructions_made_worse_too_it_is_a_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = ofat_set(instructions=True)
    new = doctored(old, DOCTORED, instructions=1.5)
    assert outcomes(compare(old, new))[DOCTORED] is Outcome.REGRESSION
    assert gate(tmp_path, old, new) == 1
    assert f"1 variant(s) failed the gate: {DOCTORED}" in capsys.readouterr().err


@pytest.mark.parametrize("timed", [True, False], ids=["timed-and-counted", "counted-only"])
def test_with_instructions_a_uniform_7_percent_drift_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], timed: bool
) -> None:
    # at 3 repeats, a few percent of such pairs have a CPU or capacity interval wholly past 5% by chance
    # (the secondary rule has no Holm): this draw has none
    old, new = ofat_set(instructions=True, timed=timed), ofat_set(instructions=True, timed=timed, drift=1.07, seed=3)
    changes = compare(old, new)
    assert all(c.outcome is Outcome.OK for c in changes)
    wide = [c for c in changes if not c.primary and (ends := c.worse_ends) and ends[1] > 0.05]
    assert bool(wide) is timed  # CPU's wide intervals: no evidence against the instructions
    assert {c.metric.counted for c in changes} == ({True, False} if timed else {True})
    assert gate(tmp_path, old, new) == 0
    assert "ok: no regression beyond 5% in 11 variant(s)" in capsys.readouterr().out


def test_with_instructions_a_missing_variant_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = ofat_set(instructions=True)
    new = [r for r in ofat_set(instructions=True, seed=2) if r.key != DOCTORED]
    assert gate(tmp_path, old, new) == 1
    assert "missing in NEW" in capsys.readouterr().out


def test_realistic_cpu_noise_at_3_repeats_is_undecided_with_the_repeats_it_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = ofat_set(), ofat_set(drift=1.07, seed=2)
    changes = compare(old, new)
    assert set(outcomes(changes).values()) == {Outcome.UNDECIDED}
    for c in changes:  # a comparison is undecided where its interval reaches past the threshold, with what it needs
        ends = c.worse_ends
        assert ends is not None and (c.outcome is Outcome.UNDECIDED) is (ends[1] > 0.05)
        assert (c.needs is not None and c.needs > 3) is (c.outcome is Outcome.UNDECIDED)
    assert gate(tmp_path, old, new) == 3
    err = capsys.readouterr().err
    assert "undecided: 11 variant(s) could not be decided at this many repeats: " in err
    needed = re.findall(r"needs (\d+|more than 100) repeats", err)
    assert len(needed) == 11 and all(n == "more than 100" or 3 < int(n) <= MAX_REPEATS for n in needed)
    md = (tmp_path / "new" / "comparisons" / "vs-old.md").read_text()
    assert "**Undecided**: 11 of 11 variant(s)" in md and "undecided (needs " in md and "| primary |" in md
    assert main(["report", "--index", str(tmp_path)]) == 0
    assert "compared with old: undecided: 11 of 11 variant(s) need more repeats" in (tmp_path / "index.md").read_text()


def test_ten_repeats_with_lower_noise_are_ok(tmp_path: Path) -> None:
    old, new = ofat_set(repeats=10, noise=0.01), ofat_set(repeats=10, noise=0.01, drift=1.07, seed=2)
    assert gate(tmp_path, old, new) == 0


def test_ok_regression_and_undecided_have_distinct_exit_codes(tmp_path: Path) -> None:
    counted = ofat_set(instructions=True)
    cases = {
        "ok": (counted, ofat_set(instructions=True, drift=1.07, seed=3)),
        "regression": (counted, doctored(counted, DOCTORED, instructions=1.5)),
        "undecided": (ofat_set(), ofat_set(seed=2)),
    }
    codes = {name: gate(tmp_path / name, old, new) for name, (old, new) in cases.items()}
    assert codes == {"ok": 0, "regression": 1, "undecided": 3}


def test_the_repeats_needed_are_the_fewest_that_decide() -> None:
    old, new = ofat_set(), ofat_set(seed=2)
    for change in (c for c in compare(old, new) if c.needs is not None):
        assert change.worse_by is not None and change.spreads is not None
        variances = (change.spreads[0] ** 2, change.spreads[1] ** 2)
        worse = math.log1p(change.worse_by)
        if change.needs <= MAX_REPEATS:
            assert _decided(worse, variances, change.needs, 0.05)
        if change.needs - 1 > min(change.repeats):  # else the next count: Holm, not the estimate, kept it undecided
            assert not _decided(worse, variances, change.needs - 1, 0.05)
    hopeless = Change("x", compare(old, new)[0].metric, None, None, Interval(1.05, 0.9, 1.2), 0.3, 0.05, repeats=(3, 3),
                      spreads=(0.1, 0.1))  # fmt: skip
    assert repeats_needed(hopeless, 0.05) == MAX_REPEATS + 1  # exactly on the threshold: never decided
    assert needs_text(MAX_REPEATS + 1) == "needs more than 100 repeats"
