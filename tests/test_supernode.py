"""The supernode: its dataset shape (hot items in many similarity lists, sparse users with the same few
neighbours; nothing else changes), the hot-key cache that fixes it (bounded, short-lived,
single-flight), and a tiny sharded bench whose records and report carry each shard's load."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from reclab.report.build import build_report
from reclab.results.file import read_results
from servers.core.hot_keys import HotKeys
from tests.test_bench import tiny_bench
from workloads.dataset import generate
from workloads.spec import DEFAULT_SPEC, SUPERNODE_SPEC, load_spec


def test_the_supernode_shape_changes_only_what_it_names() -> None:
    params = load_spec(SUPERNODE_SPEC).dataset
    plain = generate(replace(params, supernode_items=0, supernode_share=0.0, neighbour_pool=0))
    shaped = generate(params)
    supernodes = shaped.collections["meta"][0]["supernodes"]
    assert len(supernodes) == params.supernode_items and "supernodes" not in plain.collections["meta"][0]
    for name in ("items", "users", "events", "category_top"):
        assert shaped.collections[name] == plain.collections[name]
    lists = shaped.collections["item_similar"]
    pointing = sum(any(s["item"] in supernodes for s in doc["similar"]) for doc in lists) / len(lists)
    assert pointing > params.supernode_share  # each of the hot items in about half the lists
    assert all(len(a["similar"]) == len(b["similar"]) for a, b in zip(lists, plain.collections["item_similar"], strict=True))
    assert all(
        [s["score"] for s in doc["similar"]] == sorted((s["score"] for s in doc["similar"]), reverse=True) for doc in lists
    )
    cold = {u["_id"] for u in shaped.collections["users"] if u["cold"]}
    neighbours = {s["user"] for doc in shaped.collections["user_similar"] if doc["_id"] in cold for s in doc["similar"]}
    assert len(neighbours) == params.neighbour_pool


def test_the_default_dataset_is_the_heavy_tailed_world_it_was_made() -> None:
    assert generate(load_spec(DEFAULT_SPEC).dataset).content_hash() == "72eb75f5617b6d6a"  # supernode settings absent


async def test_concurrent_misses_of_one_hot_key_make_one_read_and_a_failure_is_not_kept() -> None:
    hot, reads = HotKeys(max_entries=2, ttl_s=0.2), []

    async def fetch(key: int) -> str:
        reads.append(key)
        await asyncio.sleep(0.01)
        return f"value-{key}"

    first = asyncio.ensure_future(hot.get(1, lambda: fetch(1)))
    others = [asyncio.ensure_future(hot.get(1, lambda: fetch(1))) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()  # the first caller gives up: the read it started still serves the others
    assert await asyncio.gather(*others) == ["value-1"] * 5 and reads == [1]
    assert await hot.get(1, lambda: fetch(1)) == "value-1" and reads == [1]  # kept
    await asyncio.sleep(0.25)
    assert await hot.get(1, lambda: fetch(1)) == "value-1" and reads == [1, 1]  # expired, read again
    for key in (2, 3):
        await hot.get(key, lambda key=key: fetch(key))
    assert len(hot) == 2  # bounded: the least recently used went

    async def failing() -> str:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await hot.get(9, failing)
    assert await hot.get(9, lambda: fetch(9)) == "value-9"


@pytest.mark.slow
def test_a_supernode_bench_records_each_shards_load_and_reports_it(tmp_path: Path) -> None:
    assert tiny_bench(tmp_path, matrix="supernode", no_ceiling=True) == 0
    records = read_results(tmp_path / "results.jsonl")
    assert {r.config.cache for r in records} == {"two-level", "hot"} and all(r.bench.shards == 3 for r in records)
    for record in records:
        assert record.status == "ok", record.error
        for phase in record.phases:
            assert len(phase.shards) == 3 and sum(s.ops for s in phase.shards) > 0
            assert all(s.cpu_s is not None and s.round_trips == s.ops for s in phase.shards)
            assert phase.imbalance is not None and 1.0 <= phase.imbalance <= 3.0
            assert {"database.0", "database.1", "database.2"} <= set(phase.cpu.processes)
    text = build_report(tmp_path)[0].read_text()
    assert "## Shards (3 MongoDB servers)" in text and "against the baseline: the busiest shard" in text
