"""`reclab capacity`: the search against servers made of a threshold (property tests), the objective a
window is judged on, the result's reading (at least, when the server was not the limit), and a small
real search end to end with its report."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reclab.report.build import build_report
from reclab.results.config import RunConfig
from reclab.results.file import read_results
from reclab.results.record import Arrivals, CapacityStep, RunRecord
from reclab.run.capacity import CapacityPlan, VariantSearch, capacity_record, run_capacity
from reclab.run.capacity_search import ABOVE, PRECISION, Objective, Search
from reclab.run.matrix import MatrixEntry
from reclab.run.runner import BenchOptions, bench_load
from reclab.run.workload import prepare_workload
from servers.core.rules import DEFAULT_RULES
from servers.core.variant import Variant
from tests.conftest import TINY_SPEC
from tests.records import BENCH, phase


def search_against(capacity: float, start: float, flip: float = 0.0, seed: int = 0) -> Search:
    """A search whose steps pass up to `capacity` (each verdict flipped with probability `flip`)."""
    search, noise = Search(start), random.Random(seed)
    while (following := search.next_step()) is not None:
        rate, stage = following
        search.record(rate, stage, (rate <= capacity) != (noise.random() < flip))
    return search


@given(capacity=st.floats(2.0, 5000.0), start=st.floats(1.0, 400.0))
def test_against_a_sharp_knee_the_search_brackets_it_within_5_percent_and_confirms(capacity: float, start: float) -> None:
    assume(1 / 1024 <= capacity / start <= 1024)  # within ten doublings or halvings of the start
    search = search_against(capacity, start)
    found = search.capacity
    assert found is not None and capacity / PRECISION <= found <= capacity
    assert search.confirmed and search.confirmed_fail == found * ABOVE and found * ABOVE > capacity
    assert search.steps <= search.max_steps


@settings(max_examples=200)
@given(capacity=st.floats(2.0, 5000.0), start=st.floats(1.0, 400.0), flip=st.floats(0.0, 0.5), seed=st.integers(0, 10**6))
def test_a_noisy_server_still_ends_the_search_within_its_steps(capacity: float, start: float, flip: float, seed: int) -> None:
    search = search_against(capacity, start, flip, seed)
    assert search.steps <= search.max_steps
    if search.confirmed:  # a confirmed capacity passed twice at its rate and failed 1.25 x it
        assert search.capacity is not None and search.confirmed_pass == search.capacity


def test_nothing_passing_ends_the_search_without_a_capacity() -> None:
    search = search_against(0.5, 25.0)
    assert search.capacity is None and not search.confirmed


def test_a_window_breaks_the_objective_on_its_p99_or_its_errors() -> None:
    objective = Objective(p99_ms=100.0, max_error_rate=0.01)
    fine = phase("open", 100.0, p50_ms=10.0)  # p99 40 ms, no errors
    assert objective.broken(fine) == []
    slow = phase("open", 100.0, p50_ms=50.0)  # p99 200 ms
    assert objective.broken(slow) == ["p99 200.0 ms > 100 ms"]
    arrivals = Arrivals(expected=400, sent=397, unsent=3)
    held = phase("open", 100.0, errors={"unsent": 3, "http_503": 2}, arrivals=arrivals, held_back=3)
    assert objective.broken(held) == ["errors 1.25% > 1.00% (unsent 3, http_503 2)"]
    # Unsent with nothing held back: the generator's lag as the window closed, not the server's errors.
    late = phase("open", 100.0, errors={"unsent": 3, "http_503": 2}, arrivals=arrivals)
    assert objective.broken(late) == []


def steps(limits: dict[float, str]) -> VariantSearch:
    """A finished search whose steps' windows were limited as given (rate -> bottleneck)."""
    entry = MatrixEntry(RunConfig.of("sanic", Variant()), "baseline")
    one = VariantSearch(entry, 0, search_against(300.0, 100.0), [])
    objective = Objective()
    for rate, limit in limits.items():
        passed = rate <= 300.0
        window = phase("open", rate, p50_ms=10.0 if passed else 80.0, bottleneck=limit)
        step = CapacityStep(rate=rate, stage="bisect", passed=passed, broke=objective.broken(window),
                            slo_p99_ms=100.0, max_error_rate=0.001)  # fmt: skip
        one.steps.append(
            RunRecord(kind="capacity_step", key=entry.key, config=entry.config, bench=BENCH, phases=[window], step=step)
        )
    return one


def test_the_capacity_reads_at_least_when_something_else_saturated_first_above_it() -> None:
    plan = CapacityPlan(Objective())
    one = steps({})
    found, high = one.search.capacity, one.search.high
    assert found is not None and high is not None
    server_bound = capacity_record(steps({round(found, 2): "none", round(high, 2): "server"}), BENCH, plan).capacity
    assert server_bound is not None and server_bound.limited_by == "server" and not server_bound.at_least
    assert server_bound.capacity_rps == found and server_bound.p99_ms == 40.0 and server_bound.broke_above
    shared = capacity_record(steps({round(found, 2): "none", round(high, 2): "shared-core"}), BENCH, plan).capacity
    assert shared is not None and shared.limited_by == "shared-core" and shared.at_least


def test_a_small_real_search_records_its_steps_and_result_and_reports_them(tmp_path: Path) -> None:
    plan = CapacityPlan(
        Objective(p99_ms=250.0), start_rps=40.0, step_requests=60, min_window_s=0.6, max_window_s=1.0, max_steps=5
    )
    workload = prepare_workload(TINY_SPEC, tmp_path / "runs")
    load = bench_load(workload.spec.load, quick=True, users=None, processes=None)
    entries = [MatrixEntry(RunConfig.of("sanic", Variant(cache="local")), "baseline")]
    options = BenchOptions(matrix="capacity", repeats=1, quick=True, ceiling=False, warmup_run=False, order_seed=5)
    run_capacity(workload, load, options, plan, entries, tmp_path, mongo_uri=None, redis_url=None, rules=DEFAULT_RULES)
    records = read_results(tmp_path / "results.jsonl")
    step_records = [r for r in records if r.kind == "capacity_step"]
    assert 1 <= len(step_records) <= 5 and records[-1].kind == "capacity"
    for record in step_records:
        assert record.status == "ok", record.error
        assert record.step is not None  # the window offers rate x duration arrivals, to the nearest one
        assert abs(record.phases[0].offered_rps - record.step.rate) <= 1 / plan.min_window_s + 0.01
        assert record.step.passed == (not record.step.broke)
        arrivals = record.phases[0].arrivals
        assert arrivals is not None and arrivals.sent + arrivals.unsent == arrivals.expected > 0
    assert [r.step.rate for r in step_records[:2] if r.step] == [40.0, 80.0][: min(2, len(step_records))]
    result = records[-1].capacity
    assert result is not None and result.steps == len(step_records)
    md, _ = build_report(tmp_path)
    text = md.read_text()
    assert "Capacity at p99 ≤ 250 ms" in text and "capacity-sanic" in text
    assert (tmp_path / "plots").is_dir() and any((tmp_path / "plots").glob("capacity-*.png"))
