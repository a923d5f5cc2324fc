"""The statistics behind verdicts: paired tests, equivalence, Holm, the family of a report, what
limited a phase, and the run order of a bench."""

from __future__ import annotations

import math

import pytest

from reclab.analysis.flags import bottleneck, utilisation
from reclab.analysis.stats import PairedTest, detectable_change, holm, paired_test, pooled_spread
from reclab.analysis.summary import VariantSummary, server_cpu
from reclab.analysis.verdicts import Family, decide
from reclab.results.record import CpuRecord
from reclab.run.matrix import BASELINE, build_matrix
from reclab.run.runner import run_plan
from tests.records import record

CPU = server_cpu("closed")


def test_a_clear_difference_and_a_clear_equivalence() -> None:
    base = {r: 100.0 * (1 + 0.01 * r) for r in range(5)}
    slower = paired_test({r: v * 1.3 for r, v in base.items()}, base, margin=0.05)
    assert slower.ratio is not None and slower.ratio.value == pytest.approx(1.3)
    assert slower.p_diff is not None and slower.p_diff < 1e-10  # the same ratio every repeat
    same = paired_test({r: v * (1 + (0.005 if r % 2 else -0.005)) for r, v in base.items()}, base, margin=0.05)
    assert same.p_diff is not None and same.p_diff > 0.05
    assert same.p_equiv is not None and same.p_equiv < 0.001


def test_equivalence_needs_the_whole_interval_inside_the_margin() -> None:
    base = {r: 100.0 for r in range(5)}
    noisy = paired_test({0: 104.0, 1: 96.0, 2: 103.0, 3: 97.0, 4: 100.0}, base, margin=0.02)
    assert noisy.p_equiv is not None and noisy.p_equiv > 0.05
    assert decide(noisy, noisy.p_diff, noisy.p_equiv, 0.02, higher_is_better=False).text == "inconclusive"


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])  # type: ignore[arg-type]
    assert holm([0.5]) == [0.5]


def test_the_detectable_change_grows_with_noise_and_family_size() -> None:
    def test(sd: float, n: int = 5, df: float = 4) -> PairedTest:
        return PairedTest(n, None, None, None, sd, df)

    small = detectable_change(test(0.02), family=1)
    assert small is not None and detectable_change(test(0.04), 1) > small  # type: ignore[operator]
    assert detectable_change(test(0.02), family=10) > small  # type: ignore[operator]
    assert detectable_change(test(0.02, df=40), family=1) < small  # type: ignore[operator]
    assert detectable_change(test(0.02, n=1, df=0), 1) is None


def test_the_pooled_spread_is_the_noise_left_after_variant_and_repeat() -> None:
    # Repeat 1 ran everything 10% slower (a block effect), variant b is 20% slower: no noise at all.
    a = {0: 100.0, 1: 110.0, 2: 100.0}
    b = {r: v * 1.2 for r, v in a.items()}
    exact = pooled_spread([a, b])
    assert exact is not None and exact.sd == pytest.approx(0.0, abs=1e-12) and exact.df == 2
    noisy = pooled_spread([a, {0: 120.0, 1: 120.0, 2: 130.0}, {0: 90.0, 1: 99.0, 2: 95.0}])
    assert noisy is not None and noisy.df == 4 and 0.01 < noisy.sd < 0.2
    pooled = paired_test(b, a, margin=0.05, pool=noisy)
    assert pooled.df == 4 and pooled.sd == pytest.approx(noisy.sd * math.sqrt(2))
    assert pooled_spread([a]) is None


def test_a_family_decides_a_comparison_once_from_either_side() -> None:
    tornado = BASELINE.with_factor("framework", "tornado")
    base = VariantSummary(BASELINE.key, BASELINE, "baseline", [record(BASELINE, r, 400, cpu_ms=2.0 + 0.01 * r) for r in range(5)])
    other = VariantSummary(tornado.key, tornado, "variant", [record(tornado, r, 300, cpu_ms=2.6 + 0.01 * r) for r in range(5)])
    family = Family(0.05)
    seen_from_tornado = family.add(other, base, CPU)
    seen_from_sanic = family.add(base, other, CPU)
    family.decide()
    assert family.size() == 1
    assert seen_from_tornado.verdict.text == "slower" and seen_from_sanic.verdict.text == "faster"
    assert seen_from_sanic.test.ratio is not None
    assert seen_from_sanic.test.ratio.value == pytest.approx(1 / seen_from_tornado.test.ratio.value)  # type: ignore[union-attr]


def test_the_busiest_saturated_process_limits_a_phase_else_the_shared_core() -> None:
    cpu = CpuRecord(seconds=2.0, processes={"server": 1.2, "database": 1.9, "generator.0": 0.4, "generator.1": 1.0},
                    core_busy={0: 0.6, 1: 0.99})  # fmt: skip
    used = utilisation(cpu, shared_cores=[1])
    assert used == {"server": 0.6, "database": 0.95, "generator": 0.5, "shared-core": 0.99}
    assert bottleneck(used) == "database"
    assert bottleneck({"server": 0.5, "database": 0.6, "shared-core": 0.9}) == "shared-core"
    assert bottleneck({"server": 0.97, "database": 0.9}) == "server"
    assert bottleneck({"server": 0.3, "shared-core": 0.4}) == "none"


def test_each_repeat_runs_the_matrix_in_its_own_order_from_the_seed() -> None:
    entries = build_matrix("ofat")
    plan = run_plan(entries, repeats=4, seed=11)
    orders = [[e.key for r, _, e in plan if r == repeat] for repeat in range(4)]
    assert all(sorted(o) == sorted(e.key for e in entries) for o in orders)
    assert len({tuple(o) for o in orders}) > 1
    assert plan == run_plan(entries, repeats=4, seed=11)
    assert [e.role for e in entries[:2]] == ["baseline", "aa"] and entries[0].config == entries[1].config


def test_the_drivers_matrix_has_every_driver_and_ofat_leaves_the_yardstick_out() -> None:
    drivers = build_matrix("drivers")
    assert [e.config.driver for e in drivers] == ["pymongo", "pymongo", "motor", "wire"]
    assert {e.config.variant.label() for e in drivers} == {f"gather/app/two-level/{d}" for d in ("pymongo", "motor", "wire")}
    assert "wire" not in {e.config.driver for e in build_matrix("ofat")}


def test_the_grouping_matrix_sets_the_three_groupings_side_by_side_uncached() -> None:
    entries = build_matrix("grouping")
    assert [(e.role, e.config.grouping) for e in entries] == [
        ("baseline", "app"),
        ("aa", "app"),
        ("variant", "db"),
        ("variant", "write"),
    ]
    assert {e.config.cache for e in entries} == {"none"}


def test_the_network_matrix_goes_through_the_proxy_even_at_zero_delay() -> None:
    entries = build_matrix("network")
    assert {e.config.delay_ms for e in entries} == {0.0, 1.0, 5.0}
    assert entries[0].config.strategy == "gather" and entries[0].config.delay_ms == 0.0
    assert math.isclose(sum(e.config.delay_ms or 0 for e in entries if e.role == "variant"), 2 * (0 + 1 + 5) - 0)


def test_server_cpu_at_one_pace_takes_out_how_fast_the_host_ran() -> None:
    from reclab.analysis.summary import server_cpu
    from tests.records import phase

    fast = phase("closed", 400, cpu_ms=2.0, pace_us=300.0)
    slow = phase("closed", 300, cpu_ms=2.6, pace_us=390.0)  # the host ran everything 30% slower
    paced = server_cpu("closed", pace_us=300.0)
    assert paced.read(fast) == pytest.approx(2.0) and paced.read(slow) == pytest.approx(2.0)
    assert server_cpu("closed").read(slow) == pytest.approx(2.6)
    assert paced.read(phase("closed", 300, cpu_ms=2.6)) == pytest.approx(2.6)  # no pace recorded: as measured
