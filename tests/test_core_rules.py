"""The recommender's rules on the hand-made dataset (tests/handmade.py), through the core in-process,
over the real embedded MongoDB. Expected answers are worked out by hand in each test's docstring."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from reclab.services.start import Endpoints
from servers.core.runtime import Runtime
from servers.core.variant import Variant
from tests.conftest import open_core
from tests.handmade import HANDMADE_DB


async def ids(runtime: Runtime, route: str, raw_id: str, query: str = "") -> list[int]:
    reply = await (runtime.api.recommend_items if route == "items" else runtime.api.recommend_users)(raw_id, query)
    assert reply.status == 200, reply.body
    return [item["id"] for item in orjson.loads(reply.body)["items"]]


async def reasons(runtime: Runtime, route: str, raw_id: str, query: str = "") -> list[tuple[int, str]]:
    reply = await (runtime.api.recommend_items if route == "items" else runtime.api.recommend_users)(raw_id, query)
    return [(item["id"], item["reason"]) for item in orjson.loads(reply.body)["items"]]


async def test_similar_items_keep_status_ok_in_score_order(handmade: Runtime) -> None:
    """Similar to 1: 2 (.9), 3 (.8), 4 (.7, sold out), 5 (.6) -> 2, 3, 5."""
    assert await ids(handmade, "items", "1", "limit=3") == [2, 3, 5]


async def test_callers_recent_dislikes_are_removed_and_fallback_fills(handmade: Runtime) -> None:
    """User 1 disliked 3 and 5: only 2 remains; category A's popular items fill (6, 7; 4 is sold out)."""
    assert await reasons(handmade, "items", "1", "limit=3&user=1") == [(2, "similar"), (6, "fallback"), (7, "fallback")]


async def test_fallback_never_repeats_the_item_itself_or_removed_items(handmade: Runtime) -> None:
    assert await ids(handmade, "items", "1", "user=1") == [2, 6, 7, 8, 9]


async def test_only_the_n_most_recent_dislikes_are_removed(services: Endpoints, tmp_path: Path) -> None:
    """With n = 1 only the latest dislike (3) goes; the older one (5) stays."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[services.s]\ntype = "similar"\nwhere = { status = "ok" }\nfilters = [{ kind = "disliked", n = 1 }]\n')
    runtime = await open_core(services, Variant(), rules=rules, db_name=HANDMADE_DB)
    try:
        assert await ids(runtime, "items", "1", "limit=2&user=1") == [2, 5]
    finally:
        await runtime.close()


async def test_personal_merges_scores_removes_3_views_and_rolls_recent_purchases(handmade: Runtime) -> None:
    """User 2 seeds: 10 (like), 13, 14 (purchases), 11, 12 (views). Scores: 11 .9, 12 .5+.8*.4=.82,
    13 .7, 1 .8*.3=.24, 2 .8*.2=.16. 11 was viewed 3 times: removed; 12 only twice: kept.
    13 was bought 2 days ago: pushed to the end. Fallback from 10's category B: 14, 10."""
    got = await reasons(handmade, "users", "2", "service=home/for-you")
    assert got == [(12, "similar"), (1, "similar"), (2, "similar"), (14, "fallback"), (10, "fallback"), (13, "rolled")]


async def test_rolled_items_fall_off_before_better_ones(handmade: Runtime) -> None:
    assert await ids(handmade, "users", "2", "service=home/for-you&limit=3") == [12, 1, 2]
    assert await ids(handmade, "users", "2", "service=home/for-you&limit=4") == [12, 1, 2, 13]


async def test_merged_scores_are_reported(handmade: Runtime) -> None:
    reply = await handmade.api.recommend_users("2", "service=home/for-you&limit=1")
    assert orjson.loads(reply.body)["items"][0]["score"] == pytest.approx(0.82)


async def test_cold_user_borrows_similar_users_activity(handmade: Runtime) -> None:
    """User 3 has no events; user 2 (similarity .5) lends its seeds: 11 .45, 12 .41, 13 .35."""
    assert await ids(handmade, "users", "3", "service=home/for-you&limit=3") == [11, 12, 13]


async def test_user_with_no_positive_activity_and_no_neighbours_gets_global_fallback(handmade: Runtime) -> None:
    assert await reasons(handmade, "users", "1", "service=home/for-you") == [(6, "fallback"), (14, "fallback"), (7, "fallback")]


@pytest.mark.parametrize(
    ("route", "raw_id", "query", "status", "error"),
    [
        ("items", "99", "", 404, "not_found"),
        ("users", "99", "service=home/for-you", 404, "not_found"),
        ("items", "1", "user=99", 404, "not_found"),
        ("items", "abc", "", 400, "invalid_parameter"),
        ("items", "0", "", 400, "invalid_parameter"),
        ("items", "1", "limit=0", 400, "invalid_parameter"),
        ("items", "1", "limit=101", 400, "invalid_parameter"),
        ("items", "1", "limit=x", 400, "invalid_parameter"),
        ("items", "1", "limit=2&limit=3", 400, "invalid_parameter"),
        ("items", "1", "colour=red", 400, "invalid_parameter"),
        ("items", "1", "service=nope", 400, "unknown_service"),
        ("items", "1", "service=home/for-you", 400, "wrong_route"),
        ("users", "2", "service=groceries/fruit", 400, "wrong_route"),
        ("users", "2", "user=1", 400, "invalid_parameter"),
    ],
)
async def test_bad_input_gets_a_json_error(
    handmade: Runtime, route: str, raw_id: str, query: str, status: int, error: str
) -> None:
    reply = await (handmade.api.recommend_items if route == "items" else handmade.api.recommend_users)(raw_id, query)
    assert reply.status == status
    body = orjson.loads(reply.body)
    assert body["error"] == error and body["detail"]
    assert "Server-Timing" in reply.headers


async def test_counters_count_db_ops_and_round_trips(services: Endpoints) -> None:
    """Sequential: every db op is its own round trip; gather: fewer round trips for the same ops."""
    results = {}
    for strategy in ("sequential", "gather"):
        runtime = await open_core(services, Variant(strategy=strategy), db_name=HANDMADE_DB)
        try:
            await runtime.api.recommend_users("2", "service=home/for-you")
            results[strategy] = runtime.api.metrics.snapshot()
        finally:
            await runtime.close()
    assert results["sequential"]["db_ops"] == results["gather"]["db_ops"]
    assert results["sequential"]["db_round_trips"] == results["sequential"]["db_ops"]
    assert results["gather"]["db_round_trips"] < results["sequential"]["db_round_trips"]
