"""The overload matrix: its servers (admission none, fixed, adaptive), the load built at multiples of
the capacity, the `--capacity-rps` flag, the verdicts on goodput (holds, degrades, collapses; quick and
full thresholds), the cost of admission below capacity, and the report's overload section from
records made by hand."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from reclab.analysis.overload import OverloadFindings, judge, overload_findings
from reclab.cli import main
from reclab.errors import UsageError
from reclab.report.build import build_report
from reclab.results.file import ResultsFile
from reclab.results.record import (
    Arrivals,
    BenchInfo,
    CapacityResult,
    CapacityStep,
    CpuRecord,
    Latency,
    PhaseResult,
    RunRecord,
    Warmup,
)
from reclab.run.matrix import BASELINE, build_matrix
from reclab.run.overload import (
    DRAIN_S,
    MULTIPLES,
    PHASE_S,
    QUICK_PHASE_S,
    WARMUP_USERS,
    estimate_s,
    given_capacity,
    overload_entries,
    overload_load,
    recorded_capacity,
    search_plan,
    with_multiples,
)
from reclab.run.runner import BenchOptions
from servers.core.admission import ADMISSIONS
from servers.core.limits import Limits
from tests.records import BENCH
from workloads.spec import LoadModel

CAPACITY = 100.0
MODES = ("none", "fixed", "adaptive")


def test_the_matrix_is_the_baseline_with_each_admission_control_and_no_aa_copy() -> None:
    entries = build_matrix("overload")
    assert [e.config.admission for e in entries] == list(MODES)
    assert [e.role for e in entries] == ["baseline", "variant", "variant"]
    assert entries[0].config == BASELINE
    assert entries[1].key == BASELINE.key + "/admission=fixed"
    workers = overload_entries(BenchOptions(matrix="overload", workers=2))
    assert {e.config.workers for e in workers} == {2}


@pytest.mark.parametrize(("quick", "seconds"), [(True, QUICK_PHASE_S), (False, PHASE_S)])
def test_the_load_offers_each_multiple_of_the_capacity_with_a_drain(quick: bool, seconds: float) -> None:
    spec = LoadModel(warmup_requests=77, max_outstanding=1000)
    load = overload_load(spec, 130.0, quick)
    assert [p.name for p in load.phases] == ["x0.5", "x1", "x2", "x4"]
    assert [p.rate for p in load.phases] == [65.0, 130.0, 260.0, 520.0]
    assert {p.mode for p in load.phases} == {"open"}
    assert {p.duration_s for p in load.phases} == {seconds}
    assert {p.drain_s for p in load.phases} == {DRAIN_S} and DRAIN_S > 1.0  # past the server's 1 s deadline
    assert load.warmup_requests == max(77, search_plan(spec, quick).warmup_requests)  # as the search's server did
    # the cap holds every arrival of the top phase and its drain: it never holds one back
    assert load.max_outstanding >= 520 * (seconds + DRAIN_S) > spec.max_outstanding
    assert overload_load(LoadModel(max_outstanding=50_000), 130.0, quick).max_outstanding == 50_000
    assert load.users == WARMUP_USERS < Limits().admission_limit  # admission control refuses none of the warm-up
    assert overload_load(LoadModel(users=8, processes=8), 130.0, quick).users == 8  # a user per locust process


def test_each_phase_records_its_multiple() -> None:
    phases = [_phase(f"x{m:g}", m, 50.0) for m in MULTIPLES]
    bare = RunRecord(kind="run", config=BASELINE, bench=BENCH, phases=[msgspec.structs.replace(p, offered_multiple=None)
                                                                       for p in phases])  # fmt: skip
    assert [p.offered_multiple for p in with_multiples(bare).phases] == list(MULTIPLES)


def test_the_matrix_fits_its_time_targets() -> None:
    spec = LoadModel(warmup_requests=150, quick_warmup_requests=50)
    quick, full = search_plan(spec, True), search_plan(spec, False)
    runs = 3 * 2, 3 * 4
    assert estimate_s(runs[0], overload_load(spec.quick(), 200.0, True), quick) < 4 * 60 - 50  # the services load in about 50 s
    assert estimate_s(runs[1], overload_load(spec, 200.0, False), full) < 10 * 60 - 50
    assert quick.objective.p99_ms == spec.objective_ms


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--capacity-rps", "100"], "--capacity-rps applies to --matrix overload only"),
        (["--matrix", "faults", "--capacity-rps", "100"], "--capacity-rps applies to --matrix overload only"),
        (["--matrix", "overload", "--capacity-rps", "0"], "--capacity-rps 0: must be a positive number"),
        (["--matrix", "overload", "--capacity-rps", "-5"], "--capacity-rps -5: must be a positive number"),
        (["--matrix", "overload", "--capacity-rps", "nan"], "--capacity-rps nan: must be a positive number"),
        (["--matrix", "overload", "--frameworks", "tornado", "fastapi"], "the overload matrix runs the baseline"),
        (["--matrix", "overload", "--server", "granian"], "--server applies to FastAPI and Starlette"),
    ],
)
def test_bad_capacity_flags_are_one_line_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_the_overload_matrix_runs_on_the_one_framework_asked_for() -> None:
    options = BenchOptions(matrix="overload", repeats=1, frameworks=("starlette@granian",))
    entries = overload_entries(options)
    assert {e.config.stack for e in entries} == {"starlette@granian"}
    assert [e.config.admission for e in entries] == list(ADMISSIONS)
    assert {e.config.stack for e in overload_entries(BenchOptions(matrix="overload", repeats=1))} == {"sanic"}


def test_a_resumed_bench_keeps_its_capacity_and_a_failed_search_is_not_resumed() -> None:
    given = given_capacity(build_matrix("overload")[0], BENCH, 120.0, 100.0)
    assert recorded_capacity([given]) == 120.0
    assert recorded_capacity([]) is None
    none = msgspec.structs.replace(given, status="failed", capacity=msgspec.structs.replace(given.capacity, capacity_rps=None))
    with pytest.raises(UsageError, match="found no capacity"):
        recorded_capacity([none])


@pytest.mark.parametrize(
    ("quick", "goodput", "p99_ok", "p99_shed", "verdict", "why"),
    [
        (False, 95.0, 60.0, 1.0, "holds", ""),
        (False, 85.0, 60.0, 1.0, "degrades", "goodput 85% of capacity < 90%"),
        (True, 85.0, 60.0, 1.0, "holds", ""),  # quick: holds from 80%
        (True, 75.0, 60.0, 1.0, "degrades", "goodput 75% of capacity < 80%"),
        (False, 95.0, 250.0, 1.0, "degrades", "p99 of 2xx 250 ms > 100 ms"),
        (False, 95.0, 60.0, 12.0, "degrades", "p99 of shed answers 12.0 ms > 5 ms"),
        (False, 95.0, 60.0, None, "holds", ""),  # nothing shed
        (False, 49.0, 900.0, None, "collapses", "goodput 49% of capacity < 50%"),
        (True, 10.0, None, None, "collapses", "goodput 10% of capacity < 50%"),
    ],
)
def test_verdicts_above_capacity(
    quick: bool, goodput: float, p99_ok: float | None, p99_shed: float | None, verdict: str, why: str
) -> None:
    for multiple in (2.0, 4.0):
        found, reasons = judge(multiple, goodput, multiple * CAPACITY, CAPACITY, p99_ok, p99_shed, 100.0, quick)
        assert found.text == verdict and "; ".join(reasons) == why


def test_verdicts_below_capacity_are_against_the_offered_rate() -> None:
    found, why = judge(0.5, 46.0, 50.0, CAPACITY, 300.0, None, 100.0, False)
    assert (found.text, why) == ("holds", [])  # 92% of 50/s
    assert judge(1.0, 85.0, 100.0, CAPACITY, 80.0, None, 100.0, False)[0].text == "degrades"
    assert judge(1.0, 85.0, 100.0, CAPACITY, 80.0, None, 100.0, True)[0].text == "holds"
    assert judge(1.0, 30.0, 100.0, CAPACITY, 80.0, None, 100.0, True)[0].text == "collapses"
    assert judge(1.0, None, 100.0, CAPACITY, None, None, 100.0, False)[0].text == "not judged"


def _phase(name: str, multiple: float, goodput: float, p99_ok_ms: float = 50.0, shed: int = 0, cpu_ms: float = 2.0,
           other_errors: int = 0) -> PhaseResult:  # fmt: skip
    seconds = 3.0
    offered = multiple * CAPACITY
    expected = round(offered * seconds)
    good = round(goodput * seconds)
    latency = Latency(p50=p99_ok_ms * 300, p90=p99_ok_ms * 600, p99=p99_ok_ms * 1000, p99_9=p99_ok_ms * 1200,
                      max=p99_ok_ms * 1500)  # fmt: skip
    errors = {k: n for k, n in (("shed", shed), ("unfinished", other_errors)) if n}
    return PhaseResult(
        name=name, mode="open", window_s=seconds, nominal_rps=offered, offered_rps=offered,
        arrivals=Arrivals(expected=expected, sent=expected, unsent=0), ok=good, errors=errors, throughput_rps=goodput,
        latency_us=latency, served=good + shed, server_cpu_ms_per_request=cpu_ms, pace_us=300.0,
        cpu=CpuRecord(seconds=seconds, processes={"server": cpu_ms * good / 1000}), utilisation={"server": 0.9},
        bottleneck="server", objective_ms=100.0, goodput_rps=goodput, good=good, shed=shed, latency_ok_us=latency,
        latency_shed_us=Latency(p50=400, p90=800, p99=1500, p99_9=2000, max=3000) if shed else None,
        offered_multiple=multiple,
    )  # fmt: skip


def _bench(quick: bool) -> BenchInfo:
    load = overload_load(LoadModel(), CAPACITY, quick)
    return msgspec.structs.replace(BENCH, matrix="overload", quick=quick, load=load, repeats=3)


def _runs(bench: BenchInfo, repeats: int, cpu_noise: float = 0.0) -> list[RunRecord]:
    """A collapse without admission control, fixed holding, adaptive degrading at 4x (slow 2xx); server
    CPU per request drifting from repeat to repeat alike for every mode, and `cpu_noise` apart for each run."""
    records = []
    for repeat in range(repeats):
        for order, mode in enumerate(MODES[::-1] if repeat % 2 else MODES):  # the report orders them as ADMISSIONS
            config = BASELINE.with_factor("admission", mode)
            wobble = (1 + 0.1 * math.sin(repeat)) * (1 + random.Random(f"{repeat}-{mode}").gauss(0.0, cpu_noise))  # block + run
            phases = []
            for m in MULTIPLES:
                if mode == "none":
                    goodput = m * CAPACITY * 0.97 if m <= 1 else CAPACITY * 0.2 / m
                    phase = _phase(f"x{m:g}", m, goodput + repeat, p99_ok_ms=900.0 if m > 1 else 60.0,
                                   other_errors=int(m * 40) if m > 1 else 0, cpu_ms=2.0 * wobble)  # fmt: skip
                else:
                    goodput = min(m * CAPACITY, CAPACITY) * 0.95
                    slow = mode == "adaptive" and m == 4.0
                    phase = _phase(f"x{m:g}", m, goodput - repeat, p99_ok_ms=180.0 if slow else 70.0,
                                   shed=int(max(0.0, m - 1) * CAPACITY * 3), cpu_ms=2.0 * wobble)  # fmt: skip
                phases.append(phase)
            records.append(RunRecord(kind="run", key=config.key, role="baseline" if mode == "none" else "variant",
                                     config=config, repeat=repeat, order=order, sequence=repeat * 3 + order, bench=bench,
                                     phases=phases))  # fmt: skip
    return records


def _capacity(bench: BenchInfo, steps: int = 7) -> RunRecord:
    result = CapacityResult(capacity_rps=CAPACITY, confirmed=True, above_rps=CAPACITY * 1.25, limited_by="server",
                            steps=steps, slo_p99_ms=100.0, max_error_rate=0.001)  # fmt: skip
    return RunRecord(kind="capacity", key=BASELINE.key, role="baseline", config=BASELINE, bench=bench, capacity=result)


def _findings(quick: bool, repeats: int = 3, cpu_noise: float = 0.0) -> OverloadFindings:
    bench = _bench(quick)
    return overload_findings([_capacity(bench), *_runs(bench, repeats, cpu_noise)])


def test_findings_judge_each_mode_at_each_multiple() -> None:
    found = _findings(quick=False)
    assert found.capacity is not None and found.capacity.rps == CAPACITY and found.capacity.searched
    assert found.modes == list(MODES) and found.multiples == list(MULTIPLES)
    none, fixed, adaptive = (found.cell(mode, 4.0) for mode in MODES)
    assert none is not None and fixed is not None and adaptive is not None
    assert [c.verdict.text for c in found.cells if c.mode == "none"] == ["holds", "holds", "collapses", "collapses"]
    assert fixed.verdict.text == "holds" and fixed.shed_share is not None and fixed.shed_share > 0.5
    assert adaptive.verdict.text == "degrades" and adaptive.why == ["p99 of 2xx 180 ms > 100 ms"]
    assert none.other_errors == {"unfinished": 160 * 3} and "shed" not in fixed.other_errors
    assert fixed.goodput is not None and fixed.goodput.has_interval and fixed.goodput.value == pytest.approx(94.0)
    assert fixed.goodput_share == pytest.approx(0.94)
    assert fixed.p99_shed_ms == pytest.approx(1.5) and fixed.held_back == 0
    assert fixed.attempts == 1.0  # no retries


def test_the_cost_of_admission_below_capacity_is_judged_for_equivalence() -> None:
    steady = _findings(quick=False, repeats=6, cpu_noise=0.002)
    assert [c.mode for c in steady.costs] == ["fixed", "adaptive"]
    assert all(c.phase == "x0.5" and c.verdict.text == "equivalent within ±5%" for c in steady.costs)
    noisy = _findings(quick=True, repeats=3, cpu_noise=0.03)
    assert all(c.verdict.text == "inconclusive" and c.needed is not None and c.needed > 3 for c in noisy.costs)
    off = _findings(quick=True, repeats=2, cpu_noise=0.08)  # fixed's ratio so far 0.89: outside the margin
    assert any(c.verdict.text == "inconclusive" and c.outside and c.needed is None for c in off.costs)


@pytest.mark.parametrize("quick", [False, True])
def test_the_report_has_an_overload_section_with_its_charts(tmp_path: Path, quick: bool) -> None:
    bench = _bench(quick)
    results = ResultsFile(tmp_path / "results.jsonl")
    broke = CapacityStep(rate=200.0, stage="grow", passed=False, broke=["p99 400.0 ms > 100 ms"], slo_p99_ms=100.0,
                         max_error_rate=0.001)  # fmt: skip
    step = RunRecord(kind="capacity_step", key=BASELINE.key, role="baseline", config=BASELINE, bench=bench, step=broke)
    for record in [step, _capacity(bench, steps=1), *_runs(bench, 2)]:
        results.append(record)
    md_path, html_path = build_report(tmp_path)
    md, page = md_path.read_text(), html_path.read_text()
    overload = md.split("## Overload: goodput against offered load")[1].split("\n## ")[0]
    assert "Capacity: **100.0 req/s**, searched" in overload
    assert "| none | 4x |" in overload and "collapses" in overload and "holds" in overload
    assert ("`holds` from 80%" in overload) == quick
    assert "The cost of admission below capacity" in overload and "`fixed` vs `none` at `x0.5`" in overload
    assert "## Overload: the capacity search" in md and "broke it: p99 400.0 ms \\> 100 ms" in md
    assert "## Environment" in md and "## Warnings" in md
    assert "Factor:" not in md and "A/A" not in md  # no cost verdicts, no calibration
    for plot in ("plots/overload-goodput.png", "plots/overload-tails.png"):
        assert (tmp_path / plot).stat().st_size > 1000 and plot in md
    assert "plots/overload-tails.png" in page and 'data-chart="goodput"' in page  # the goodput chart is interactive there
    assert "Overload: goodput against offered load" in page and '<td class="slower">collapses</td>' in page


def test_a_given_capacity_and_retries_are_reported(tmp_path: Path) -> None:
    bench = _bench(False)
    retrying = msgspec.structs.replace(bench, load=replace(bench.load, retry_shed=True, max_retries=3))
    refused = Warmup(requests=400, ok=15, errors={"shed": 385})  # a closed-loop warm-up spinning on refusals
    runs = [msgspec.structs.replace(r, phases=[msgspec.structs.replace(p, retries=p.shed // 2) for p in r.phases],
                                    warmup=refused if r.config.admission == "fixed" else None)
            for r in _runs(retrying, 2)]  # fmt: skip
    results = ResultsFile(tmp_path / "results.jsonl")
    for record in [given_capacity(build_matrix("overload")[0], retrying, CAPACITY, 100.0), *runs]:
        results.append(record)
    md = build_report(tmp_path)[0].read_text()
    assert "given with `--capacity-rps` (not searched)" in md
    assert "Admission control refused 770 of the warm-ups' requests" in md
    retries = md.split("## Overload: clients that retry")[1].split("\n## ")[0]
    assert "| fixed | 4x | 1.38 |" in retries  # 900 shed, 450 retries over 1,200 arrivals sent per run
    assert "## Overload: the capacity search" not in md
