"""The lean hot path's pieces give what their plain versions give (property tests, no I/O), and the
hot-path figures are read as documented (`reclab.run.hotpath`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclab.run.hotpath import HotPath, Window
from servers.core.recommender import merge_scores, top_candidates
from servers.core.rules import compile_where
from servers.core.store import Activity, group_events

ITEMS = st.integers(min_value=1, max_value=40)
KINDS = st.sampled_from(["view", "like", "dislike", "purchase"])
EVENTS = st.lists(st.fixed_dictionaries({"item": ITEMS, "kind": KINDS, "ts": st.integers(0, 50)}), max_size=80)
SCORES = st.dictionaries(ITEMS, st.floats(min_value=0, max_value=5, allow_nan=False))


@given(EVENTS)
def test_grouping_in_one_pass_equals_adding_event_by_event(events: list[dict]) -> None:
    reference = Activity()
    for event in events:
        reference.add(event["item"], event["kind"], 1, event["ts"])
    grouped = group_events(events)
    assert grouped.counts == reference.counts
    assert grouped.latest == reference.latest
    assert [list(v) for v in grouped.latest.values()] == [list(v) for v in reference.latest.values()]  # same order


@given(SCORES, st.sets(ITEMS), st.integers(min_value=0, max_value=50))
def test_top_candidates_are_the_best_by_score_then_item_id(scores: dict[int, float], removed: set[int], count: int) -> None:
    reference = sorted(((i, s) for i, s in scores.items() if i not in removed), key=lambda kv: (-kv[1], kv[0]))[:count]
    assert top_candidates(scores, removed, count) == reference


@given(st.dictionaries(ITEMS, st.lists(st.tuples(ITEMS, st.floats(0, 1, allow_nan=False)), max_size=10), max_size=6))
def test_merging_pairs_sums_weight_times_similarity(similar: dict[int, list[tuple[int, float]]]) -> None:
    seeds = {seed: 1.0 / (rank + 1) for rank, seed in enumerate(similar)}
    expected: dict[int, float] = {}
    for seed, weight in seeds.items():
        for item, score in similar[seed]:
            expected[item] = expected.get(item, 0.0) + weight * score
    assert merge_scores(seeds, similar) == expected


@given(
    st.lists(
        st.tuples(st.sampled_from(["status", "category", "seller"]), st.sampled_from(["a", "b"])),
        max_size=3,
        unique_by=lambda kv: kv[0],
    )
)
def test_a_compiled_where_matches_as_the_conditions_say(where: list[tuple[str, str]]) -> None:
    matches = compile_where(tuple(where))
    for status in ("a", "b"):
        for category in ("a", "b"):
            item = {"status": status, "category": category, "seller": "a"}
            assert matches(item) == all(item.get(name) == value for name, value in where)


def window(ms: float, share: float = 0.95, pace_us: float | None = None, others: float | None = None) -> Window:
    return Window(served=1000, cpu_ms_per_request=ms, core_share=share, pace_us=pace_us, others_busy=others)


def hot_path(stream: list[Window], health: list[Window]) -> HotPath:
    return HotPath("sanic", "gather/app/two-level/pymongo", "locust", stream, health)


def test_the_ratio_is_taken_round_by_round_and_the_limit_named() -> None:
    result = hot_path([window(1.0), window(1.2), window(0.9)], [window(0.1), window(0.12), window(0.1)])
    assert result.ratios == [10.0, 10.0, 9.0]
    assert result.limited_by() == "server"
    figures = result.as_dict()
    assert figures["stream_cpu_ms_per_request"] == 1.0 and figures["health_cpu_ms_per_request"] == 0.1
    low, high = figures["ratio_interval"]
    assert low < figures["ratio"] < high
    assert hot_path([window(1.0, share=0.6)], [window(0.1)]).limited_by() == "not the server (its core had idle time)"
    busy_other = hot_path([window(1.0, share=0.8, others=0.97)] * 2, [window(0.1)] * 2).limited_by()
    assert busy_other.startswith("the other core (97% busy")


def test_the_ratio_at_one_pace_takes_out_a_slower_host_in_the_stream_windows() -> None:
    slow_stream = [window(1.0, pace_us=400.0) for _ in range(3)]  # the host ran a third slower
    result = hot_path(slow_stream, [window(0.1, pace_us=300.0) for _ in range(3)])
    assert result.ratio().value == pytest.approx(10.0)  # type: ignore[union-attr]
    assert result.paced_ratio().value == pytest.approx(7.5)  # type: ignore[union-attr]
    assert result.as_dict()["ratio_at_one_pace"] == pytest.approx(7.5)
    assert hot_path([window(1.0)], [window(0.1, pace_us=300.0)]).paced_ratio() is None  # no pace, no paced ratio
