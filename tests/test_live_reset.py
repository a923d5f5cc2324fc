"""Every run starts from the database as loaded (`reclab.run.live_reset`), against the real embedded
MongoDB: live events and activity updates written with pymongo directly, as a server's `POST /events`
writes them, are put back by the reset, through lookups by user and through one scan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from reclab.run import live_reset
from reclab.run.live_reset import LiveData, redacted
from reclab.services.start import Endpoints
from servers.core.activity import ACTIVITY, activity_update
from servers.core.runtime import DB_NAME
from workloads.dataset import DATASET_NOW


@pytest.fixture
def db(services: Endpoints) -> Iterator[Database[dict[str, Any]]]:
    client: MongoClient[dict[str, Any]] = MongoClient(services.mongo_uri, timeoutMS=30_000)
    yield client[DB_NAME]
    client.close()


def as_loaded(db: Database[dict[str, Any]], users: list[int]) -> dict[int, tuple[int, dict[str, Any] | None]]:
    """Each user's number of events and activity document."""
    return {u: (len(list(db["events"].find({"user": u}, {"_id": 1}))), db[ACTIVITY].find_one({"_id": u})) for u in users}


def write_live(db: Database[dict[str, Any]], user: int, item: int, n: int, *, with_activity: bool = True) -> None:
    """What a server's `POST /events` stores with `--grouping write`: the events (their `_id` made by
    the driver) and the update of the user's activity document."""
    events = [{"user": user, "item": item, "kind": "view", "ts": DATASET_NOW + 10_000_000 + k} for k in range(n)]
    db["events"].insert_many(events)
    if with_activity:
        db[ACTIVITY].update_one({"_id": user}, activity_update(events), upsert=True)


def some_users(db: Database[dict[str, Any]]) -> tuple[int, int, int, int]:
    """Two users with a history, one without (no activity document), and an item."""
    warm = [doc["_id"] for doc in db["users"].find({"cold": False}).limit(2)]
    cold = db["users"].find_one({"cold": True})
    item = db["items"].find_one({})
    assert len(warm) == 2 and cold and item
    return warm[0], warm[1], cold["_id"], item["_id"]


@pytest.mark.parametrize("scan", [False, True], ids=["lookups", "scan"])
def test_the_reset_puts_live_events_and_activity_back_as_loaded(
    db: Database[dict[str, Any]], services: Endpoints, monkeypatch: pytest.MonkeyPatch, scan: bool
) -> None:
    warm, other, cold, item = some_users(db)  # other: an activity update stored while its events' insert failed
    users = [warm, cold, other]
    with LiveData(services.mongo_uri, users) as live:
        assert live.with_activity == [True]
        before = as_loaded(db, users)
        assert before[warm][1] is not None and before[other][1] is not None and before[cold][1] is None
        write_live(db, warm, item, 3)
        write_live(db, cold, item, 2)
        db[ACTIVITY].update_one({"_id": other}, activity_update([{"user": other, "item": item, "kind": "like", "ts": 1}]))
        assert as_loaded(db, users) != before
        if scan:
            monkeypatch.setattr(live_reset, "SCAN_ABOVE", 0)
        done = live.reset()
        assert (done.users, done.deleted) == (3, 5)
        assert as_loaded(db, users) == before
        assert live.reset().deleted == 0  # nothing left to put back
        assert as_loaded(db, users) == before


def test_a_reset_for_users_who_wrote_nothing_changes_nothing(db: Database[dict[str, Any]], services: Endpoints) -> None:
    warm, _, cold, _ = some_users(db)
    with LiveData(services.mongo_uri) as live:
        before = as_loaded(db, [warm, cold])
        done = live.reset([warm, cold])
        assert (done.users, done.deleted) == (2, 0)
        assert as_loaded(db, [warm, cold]) == before


def test_error_messages_never_carry_the_password() -> None:
    uris = ["mongodb://lab:s3cr%40t@db.example:27017/?authSource=admin"]
    error = ValueError("auth failed for mongodb://lab:s3cr@t@db.example:27017 (s3cr%40t)")
    shown = redacted(error, uris)
    assert "s3cr" not in shown and shown.startswith("ValueError: auth failed")


def test_a_reset_after_a_run_without_activity_writes_deletes_its_events_only(
    db: Database[dict[str, Any]], services: Endpoints
) -> None:
    """`reset(activity=False)`, as after a run of `grouping` app or db: the live events go, the activity
    documents are neither read nor rewritten (such a server never writes them)."""
    warm, _, _, item = some_users(db)
    with LiveData(services.mongo_uri, [warm]) as live:
        before = as_loaded(db, [warm])
        write_live(db, warm, item, 2, with_activity=False)
        done = live.reset(activity=False)
        assert (done.users, done.deleted) == (1, 2)
        assert as_loaded(db, [warm]) == before
