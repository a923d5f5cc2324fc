"""Reads the recommender needs, over a driver, a cache and the `grouping` and `strategy` switches.

- `grouping=db`: MongoDB does the work (`$group` of a user's events, `$filter` of a similarity list).
- `grouping=app`: plain finds, grouped and filtered here in Python.
- `grouping=write`: each write also updates its user's activity document (`servers.core.activity`), so a
  read of a user's activity is one document by key; similarity lists are filtered here, as with `app`.
All three give identical results.

Writes (`record`) store a request's events, and with `grouping=write` add them to their users' activity
documents in the same round (the two calls issued as `strategy` says), and return once the database
acknowledged both. The write generations of their users are then bumped (`servers.core.tally`), so that
no activity read before the write is served after it (`--cache hot`).

Lookups of many ids are one call per id (`$in` scans the whole collection on the embedded engine),
issued in turn or concurrently according to `strategy`. Similarity lists leave the store as ready
`(item, score)` pairs, best first: that is the form the caches keep and the recommender iterates, so
no request reads a list of small documents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from servers.core.activity import ACTIVITY, Activity, activity_update, from_document, group_events
from servers.core.cache import Cache, count_lookups
from servers.core.calls import run_all
from servers.core.drivers import Database, Document
from servers.core.hot_keys import HotKeys
from servers.core.tally import Tally, new_tally
from servers.core.variant import Variant

__all__ = ["ACTIVITY_GROUP", "Activity", "Similar", "Store", "group_events"]

Similar = Sequence[Sequence[Any]]  # (item, score) pairs, best first (tuples, or lists read back from Redis)


ACTIVITY_GROUP = {"_id": {"item": "$item", "kind": "$kind"}, "n": {"$sum": 1}, "last": {"$max": "$ts"}}


class Store:
    def __init__(self, db: Database, cache: Cache, variant: Variant, tally: Tally | None = None) -> None:
        self.db = db
        self.cache = cache
        self.variant = variant
        self.tally = tally or new_tally()  # write generations, shared by the server's workers
        # activity of hot keys, in the instance, while no write for them was stored since it was read
        self.hot = HotKeys(generation=self.tally.generation) if variant.cache == "hot" else None

    async def run_all(self, calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
        return await run_all(self.variant.strategy, calls)

    # -- reference data, cached ------------------------------------------------------------
    async def items(self, ids: list[int]) -> dict[int, Document | None]:
        return await self._cached("i", ids, lambda i: self.db.find_one("items", {"_id": i}))

    async def users(self, ids: list[int]) -> dict[int, Document | None]:
        return await self._cached("p", ids, lambda i: self.db.find_one("users", {"_id": i}))

    async def similar_items(self, ids: list[int], min_score: float) -> dict[int, Similar]:
        found = await self._cached(f"s{min_score:g}:", ids, lambda i: self._similar_items(i, min_score))
        return {i: v or () for i, v in found.items()}

    async def similar_users(self, user: int) -> list[Document]:
        found = await self._cached("u", [user], lambda i: self._field("user_similar", i, "similar"))
        return found[user] or []

    async def category_top(self, category: str) -> list[int]:
        found = await self._cached("c", [category], lambda c: self._field("category_top", c, "items"))
        return found[category] or []

    async def unknown_ids(self, users: list[int], items: list[int]) -> tuple[list[int], list[int]]:
        """The users and the items among these that do not exist (looked up like any reference data)."""
        found_users, found_items = await self.run_all([lambda: self.users(users), lambda: self.items(items)])
        return [u for u, doc in found_users.items() if doc is None], [i for i, doc in found_items.items() if doc is None]

    # -- writes ------------------------------------------------------------------------------
    async def record(self, events: list[Document]) -> None:
        """Store checked events (and their users' activity documents with `grouping=write`); returns once
        the database acknowledged every write."""
        documents = [dict(event) for event in events]  # the driver gives each its _id
        calls: list[Callable[[], Awaitable[Any]]] = [lambda: self.db.insert_many("events", documents)]
        if self.variant.grouping == "write":
            by_user: dict[int, list[Document]] = {}
            for event in events:
                by_user.setdefault(event["user"], []).append(event)
            updates = [({"_id": user}, activity_update(mine)) for user, mine in by_user.items()]
            calls.append(lambda: self.db.upsert_many(ACTIVITY, updates))
        try:
            await self.run_all(calls)
        finally:  # even a write that failed may have been stored: no read from before it is served after
            for user in {event["user"] for event in events}:
                self.tally.bump(user)

    # -- activity: never cached, but in the instance with --cache hot, until a write ---------
    async def activities(self, users: list[int]) -> list[Activity]:
        return await self.run_all([partial(self._activity, u) for u in users])

    async def _activity(self, user: int) -> Activity:
        if self.hot is not None:
            return await self.hot.get(user, partial(self._read_activity, user))
        return await self._read_activity(user)

    async def _read_activity(self, user: int) -> Activity:
        if self.variant.grouping == "write":
            return from_document(await self.db.find_one(ACTIVITY, {"_id": user}))
        if self.variant.grouping == "db":
            rows = await self.db.aggregate("events", [{"$match": {"user": user}}, {"$group": ACTIVITY_GROUP}])
            activity = Activity()
            for row in rows:
                activity.add(row["_id"]["item"], row["_id"]["kind"], row["n"], row["last"])
            return activity
        return group_events(await self.db.find("events", {"user": user}, {"_id": 0, "item": 1, "kind": 1, "ts": 1}))

    async def _similar_items(self, item: int, min_score: float) -> Similar | None:  # write: as app
        if self.variant.grouping == "db":
            keep = {"$filter": {"input": "$similar", "as": "s", "cond": {"$gte": ["$$s.score", min_score]}}}
            rows = await self.db.aggregate("item_similar", [{"$match": {"_id": item}}, {"$project": {"similar": keep}}])
            return [(s["item"], s["score"]) for s in rows[0]["similar"]] if rows else None
        doc = await self.db.find_one("item_similar", {"_id": item})
        return None if doc is None else [(s["item"], s["score"]) for s in doc["similar"] if s["score"] >= min_score]

    async def _field(self, collection: str, key: Any, name: str) -> Any:
        doc = await self.db.find_one(collection, {"_id": key})
        return None if doc is None else doc[name]

    async def _cached(self, prefix: str, keys: list[Any], fetch: Callable[[Any], Awaitable[Any]]) -> dict[Any, Any]:
        """Look keys up in the cache, fetch the misses from the database, fill the cache."""
        cache_keys = {key: f"{prefix}{key}" for key in keys}  # a dict: each key once, in order
        hits = await self.cache.get_many(list(cache_keys.values()))
        if len(hits) == len(cache_keys):  # the warm path: everything was cached
            if self.variant.cache != "none":
                count_lookups(len(hits), 0)
            return {key: hits[ck] for key, ck in cache_keys.items()}
        found = {key: hits[ck] for key, ck in cache_keys.items() if ck in hits}
        missing = [key for key in cache_keys if key not in found]
        if self.variant.cache != "none":
            count_lookups(len(found), len(missing))
        if missing:
            fetched = await self.run_all([partial(fetch, k) for k in missing])
            found.update(zip(missing, fetched, strict=True))
            known = {cache_keys[k]: v for k, v in zip(missing, fetched, strict=True) if v is not None}
            await self.cache.set_many(known)  # unknown ids are not cached: a scan of ids cannot evict hot entries
        return found
