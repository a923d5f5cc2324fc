"""The database's work per request in portable units: documents and bytes returned, counted in the
core whatever the driver, over the real embedded MongoDB; requests grouped by their user's history
size; the engine's own counters where it keeps them."""

from __future__ import annotations

import bson
import pytest

from reclab.run.metrics import MetricsDelta
from reclab.services.engine_counters import EngineCounters, work_counters
from reclab.services.start import Endpoints
from servers.core import documents
from servers.core.documents import bytes_estimate
from servers.core.history import label_of
from servers.core.runtime import Runtime
from servers.core.variant import Variant
from tests.conftest import open_core
from tests.handmade import HANDMADE_DB

REQUESTS = [("users", "2", "service=home/for-you"), ("items", "1", "user=1"), ("items", "10", ""),
            ("users", "3", "service=home/for-you"), ("items", "13", "user=2")]  # fmt: skip
USER_2_EVENTS = 8  # tests/handmade.py: a like, three views of 11, two of 12, two purchases


async def serve(runtime: Runtime, times: int = 1) -> dict:
    for _ in range(times):
        for route, raw_id, query in REQUESTS:
            reply = await (runtime.api.recommend_items if route == "items" else runtime.api.recommend_users)(raw_id, query)
            assert reply.status == 200, reply.body
    return runtime.api.metrics.snapshot()


@pytest.mark.parametrize("driver", ["pymongo", "motor", "wire"])
async def test_every_driver_counts_the_same_documents(services: Endpoints, driver: str) -> None:
    counted = {}
    for name in ("pymongo", driver):
        runtime = await open_core(services, Variant("sequential", "app", "none", name), db_name=HANDMADE_DB)
        try:
            counted[name] = (await serve(runtime))["db_docs"]
        finally:
            await runtime.close()
    assert counted[driver] == counted["pymongo"] > 0


async def test_bytes_estimated_from_every_eighth_call_are_close_to_every_calls_bytes(
    services: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    measured = {}
    for every in (1, documents.BYTES_SAMPLE):
        monkeypatch.setattr(documents, "BYTES_SAMPLE", every)
        runtime = await open_core(services, Variant("sequential", "app", "none", "pymongo"), db_name=HANDMADE_DB)
        try:
            measured[every] = (await serve(runtime, times=12))["db_bytes"]
        finally:
            await runtime.close()
    assert measured[1] > 0
    assert measured[documents.BYTES_SAMPLE] == pytest.approx(measured[1], rel=0.05)


async def test_requests_are_grouped_by_their_users_history(services: Endpoints) -> None:
    runtime = await open_core(services, Variant("sequential", "db", "none", "pymongo"), db_name=HANDMADE_DB)
    try:
        snapshot = await serve(runtime)
    finally:
        await runtime.close()
    by_history = {row["history"]: row for row in snapshot["by_history"]}
    assert by_history["none"]["requests"] == 1  # an item without a caller
    assert by_history["0"]["requests"] == 1  # user 3: no history, served through user 2
    assert by_history["1-9"]["requests"] == 3  # user 2 (8 events) twice, user 1 (2 dislikes) once
    assert sum(row["docs"] for row in by_history.values()) == snapshot["db_docs"]
    assert all(row["time_ms"]["total"] > 0 for row in by_history.values())


@pytest.mark.parametrize("grouping", ["app", "db"])
async def test_an_activity_knows_how_many_events_it_grouped(services: Endpoints, grouping: str) -> None:
    runtime = await open_core(services, Variant("sequential", grouping, "none", "pymongo"), db_name=HANDMADE_DB)
    try:
        user_2, user_3 = await runtime.store.activities([2, 3])
    finally:
        await runtime.close()
    assert (user_2.events, user_3.events) == (USER_2_EVENTS, 0)


def test_history_buckets_are_half_decades() -> None:
    assert [label_of(n) for n in (-1, 0, 1, 9, 10, 29, 30, 99, 100, 299, 300, 999, 1000, 10**6)] == [
        "none", "0", "1-9", "1-9", "10-29", "10-29", "30-99", "30-99", "100-299", "100-299", "300-999", "300-999",
        "1000+", "1000+",
    ]  # fmt: skip


def test_the_bytes_estimate_scales_each_collections_measured_calls() -> None:
    events = [{"item": 1, "kind": "view", "ts": 1}] * 10
    size = len(bson.encode({"d": events}))
    counts = {"db_docs_events": 100.0, "db_sampled_docs_events": 10.0, "db_sampled_bytes_events": float(size),
              "db_docs_items": 3.0}  # fmt: skip
    assert bytes_estimate(counts) == pytest.approx(size * 10)  # items: never measured, left out
    assert bytes_estimate({"db_docs_items": 3.0}) is None


def test_a_phase_gets_documents_bytes_and_history_per_request() -> None:
    def row(history: str, requests: int, docs: int, db: float, app: float, total: float) -> dict:
        return {"history": history, "requests": requests, "docs": docs, "time_ms": {"db": db, "app": app, "total": total}}

    def events(docs: float, sampled: float, size: float) -> dict:
        return {"db_docs_events": docs, "db_sampled_docs_events": sampled, "db_sampled_bytes_events": size}

    before = {"requests": 10, "db_ops": 20, "time_ms": {"db": 1.0}, "db_docs": 100, "db_documents": events(100, 10, 500),
              "by_history": [row("1-9", 10, 100, 1.0, 2.0, 4.0)]}  # fmt: skip
    after = {"requests": 30, "db_ops": 60, "time_ms": {"db": 3.0}, "db_docs": 500, "db_documents": events(500, 50, 2500),
             "by_history": [row("1-9", 25, 400, 2.5, 5.0, 10.0), row("0", 5, 100, 1.0, 1.0, 2.0)]}  # fmt: skip
    delta = MetricsDelta.between(before, after)
    assert delta.db_docs_per_request == 20.0 and delta.db_bytes_per_request == pytest.approx(400 * 50 / 20)
    rows = {row.history: row for row in delta.by_history}
    assert rows["1-9"].requests == 15 and rows["1-9"].docs == 300 and rows["1-9"].app_ms == 3.0
    assert rows["0"].requests == 5


def test_the_engines_own_counters_are_read_where_it_keeps_them(services: Endpoints) -> None:
    status = {"metrics": {"queryExecutor": {"scanned": 10, "scannedObjects": 1200}, "document": {"returned": 800}}}
    assert work_counters(status) == {"examined": 1200.0, "returned": 800.0}
    assert work_counters({"opcounters": {"query": 3}}) is None
    assert EngineCounters.probe([services.mongo_uri]) is None  # the embedded mongoeco does not say
