"""Every run starts from the database as loaded: what a run's writes changed is put back before the next.

A stream with write entries (`POST /events`, `workloads.writes`) changes the database that later runs
read, and so does the fault matrix's write probe (`reclab.run.write_probe`). After each run, for every
user those writes may have touched (known before the bench starts: the users of the stream's writes
and the probe's user), `LiveData.reset` deletes the user's live events (those whose `_id` is an
ObjectId made by the driver; the loaded dataset's events have integer ids) and puts the user's
`activity` document back as it was loaded (read once, when the bench opens the database), or deletes it
when it was not there then. Each user is read and
written on their own shard (`servers.core.shards`). Only what changed is rewritten: a user's live events
are deleted, and an activity document is rebuilt only when it no longer counts (`n`) the events it
counted when loaded (every update of it adds to that count; one read of the collection's counts tells
which changed, whoever changed them); after a run whose server never writes activity documents (any
grouping but `write`), they are not read at all. With few users each is looked up by the
indexed field `user`; with more than `SCAN_ABOVE` on a shard, one deletion of every live event (a scan)
is cheaper (mongoeco, default world: about 1 s for 184,633 events, against 2.9 s for 1,281 lookups; an
`$in` of many users is far slower than either, and is never sent). Every call is bounded in time, and no
error message carries a URI's password.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pymongo import DeleteOne, MongoClient, ReplaceOne
from pymongo.database import Database
from pymongo.errors import PyMongoError

from reclab.errors import ServiceError
from servers.core.activity import ACTIVITY
from servers.core.runtime import DB_NAME
from servers.core.shards import Partitioning, partitioning_of, shard_uris
from servers.core.uris import hidden

CALL_TIMEOUT_MS = 30_000  # any one call (a user's deletion, read or rewrite), connection included
CONNECT_TIMEOUT_MS = 5_000
SCAN_ABOVE = 400  # users on one shard above which one scan for live events is cheaper than a lookup each
LIVE = {"$type": "objectId"}  # a live event's `_id`: made by the driver when the server inserted it


@dataclass(frozen=True)
class ResetDone:
    """One reset: the users put back, the live events deleted, how long it took."""

    users: int
    deleted: int
    seconds: float


class LiveData:
    """The bench's MongoDB (each shard of it), as the lab reads and repairs it around runs.

    Open it before the first run: whether each shard holds an `activity` collection is read then, as
    the dataset was loaded."""

    def __init__(self, mongo_uri: str, users: Iterable[int] = (), *, db_name: str = DB_NAME,
                 timeout_ms: int = CALL_TIMEOUT_MS) -> None:  # fmt: skip
        self.users = set(users)
        self.done: list[ResetDone] = []
        self._uris = shard_uris(mongo_uri)
        self._clients: list[MongoClient[dict[str, Any]]] = [
            MongoClient(uri, timeoutMS=timeout_ms, connectTimeoutMS=CONNECT_TIMEOUT_MS,
                        serverSelectionTimeoutMS=CONNECT_TIMEOUT_MS)
            for uri in self._uris
        ]  # fmt: skip
        self._dbs: list[Database[dict[str, Any]]] = [client[db_name] for client in self._clients]
        try:
            metas = [db["meta"].find_one({"_id": "dataset"}) for db in self._dbs]
            self.partitioning: Partitioning = partitioning_of(metas, [f"shard {n}" for n in range(len(self._dbs))])
            self.with_activity = [ACTIVITY in db.list_collection_names() for db in self._dbs]
            self._loaded = [self._activity_documents(n) for n in range(len(self._dbs))]
        except (PyMongoError, ValueError) as error:
            self.close()
            raise ServiceError(f"MongoDB: cannot read the loaded dataset: {redacted(error, self._uris)}") from None

    def __enter__(self) -> LiveData:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def add(self, users: Iterable[int]) -> None:
        """More users to put back after each run."""
        self.users.update(users)

    def database_of(self, user: int) -> Database[dict[str, Any]]:
        """The database (shard) that holds `user`'s events and activity."""
        return self._dbs[self.partitioning.shard_of(user)]

    def reset(self, users: Iterable[int] | None = None, *, activity: bool = True) -> ResetDone:
        """Put `users` (by default every user added) back as loaded; a ServiceError if MongoDB fails.
        `activity=False`: only live events were written, no activity document (nor read for one)."""
        chosen = sorted(self.users if users is None else set(users))
        started = time.perf_counter()
        deleted = 0
        try:
            by_shard: dict[int, list[int]] = {}
            for user in chosen:
                by_shard.setdefault(self.partitioning.shard_of(user), []).append(user)
            for shard, mine in by_shard.items():
                deleted += self._reset_shard(shard, mine, activity)
        except PyMongoError as error:
            raise ServiceError(f"MongoDB: could not put the database back as loaded: {redacted(error, self._uris)}") from None
        self.done.append(ResetDone(len(chosen), deleted, round(time.perf_counter() - started, 3)))
        return self.done[-1]

    def summary(self) -> str:
        """The resets so far, in a line."""
        if not self.done:
            return "database put back: no reset yet"
        times = sorted(done.seconds for done in self.done)
        return (f"database put back after each run: {len(times)} resets of {len(self.users)} users, "
                f"median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s, "
                f"{sum(done.deleted for done in self.done)} live events deleted")  # fmt: skip

    def _reset_shard(self, shard: int, users: list[int], activity: bool) -> int:
        db = self._dbs[shard]
        if len(users) > SCAN_ABOVE:  # one scan: every live event goes, whoever wrote it
            deleted = db["events"].delete_many({"_id": LIVE}).deleted_count
        else:
            deleted = sum(db["events"].delete_many({"user": user, "_id": LIVE}).deleted_count for user in users)
        if not activity:
            return deleted
        loaded, now = self._loaded[shard], self._activity_counts(shard)
        drifted = sorted(user for user in set(loaded) | set(now) if loaded.get(user, {}).get("n") != now.get(user))
        rewrites: list[ReplaceOne[dict[str, Any]] | DeleteOne] = [
            ReplaceOne({"_id": user}, loaded[user], upsert=True) if user in loaded else DeleteOne({"_id": user})
            for user in drifted
        ]
        if rewrites and (self.with_activity[shard] or ACTIVITY in db.list_collection_names()):
            db[ACTIVITY].bulk_write(rewrites, ordered=False)
        return deleted

    def _activity_documents(self, shard: int) -> dict[int, dict[str, Any]]:
        """user -> their activity document on `shard`, as it is now (read when the bench opens it)."""
        db = self._dbs[shard]
        if not self.with_activity[shard]:
            return {}
        return {doc["_id"]: doc for doc in db[ACTIVITY].find({})}

    def _activity_counts(self, shard: int) -> dict[int, int]:
        """user -> the events their activity document counts, on `shard` (one read of the collection)."""
        db = self._dbs[shard]
        if not self.with_activity[shard] and ACTIVITY not in db.list_collection_names():
            return {}
        return {doc["_id"]: doc.get("n", 0) for doc in db[ACTIVITY].find({}, {"n": 1})}

    def live_times(self, user: int, since: int) -> set[int]:
        """The times (`ts`) of `user`'s live events at or after `since`."""
        try:
            found = self.database_of(user)["events"].find({"user": user, "_id": LIVE}, {"_id": 0, "ts": 1})
            return {doc["ts"] for doc in found if doc.get("ts", since - 1) >= since}
        except PyMongoError as error:
            raise ServiceError(f"MongoDB: could not look the probe's writes up: {redacted(error, self._uris)}") from None


def redacted(error: BaseException, uris: list[str]) -> str:
    """An error's first line, without any password of `uris`."""
    text = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return hidden(text, uris)[:300]
