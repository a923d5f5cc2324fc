"""Reads the recommender needs, over a driver, a cache and the `grouping` and `strategy` switches.

- `grouping=db`: MongoDB does the work (`$group` of a user's events, `$filter` of a similarity list).
- `grouping=app`: plain finds, grouped and filtered here in Python.
Both give identical results. Lookups of many ids are one call per id (`$in` scans the whole
collection on the embedded engine), issued in turn or concurrently according to `strategy`.
Similarity lists leave the store as ready `(item, score)` pairs, best first: that is the form the
caches keep and the recommender iterates, so no request reads a list of small documents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from servers.core.cache import Cache, count_lookups
from servers.core.calls import run_all
from servers.core.drivers import Database, Document
from servers.core.hot_keys import HotKeys
from servers.core.variant import Variant

Similar = Sequence[Sequence[Any]]  # (item, score) pairs, best first (tuples, or lists read back from Redis)


@dataclass
class Activity:
    """One user's events, grouped by (item, kind): how many, and the latest timestamp."""

    counts: dict[tuple[int, str], int] = field(default_factory=dict)
    latest: dict[str, dict[int, int]] = field(default_factory=dict)  # kind -> item -> latest timestamp
    events: int = 0  # how many events were grouped: the size of the history

    def add(self, item: int, kind: str, n: int, last: int) -> None:
        self.events += n
        self.counts[(item, kind)] = self.counts.get((item, kind), 0) + n
        of_kind = self.latest.setdefault(kind, {})
        of_kind[item] = max(of_kind.get(item, last), last)

    def items_of(self, kind: str) -> dict[int, int]:
        """item -> latest timestamp, for one kind (read-only view)."""
        return self.latest.get(kind, {})

    def count(self, item: int, kind: str) -> int:
        return self.counts.get((item, kind), 0)

    def is_empty(self) -> bool:
        return not self.counts


def group_events(events: list[Document]) -> Activity:
    """App-side grouping of raw event documents (the Python twin of the `$group` stage); one pass,
    no call per event (a user's events are read on every request)."""
    counts: dict[tuple[int, str], int] = {}
    latest: dict[str, dict[int, int]] = {}
    for event in events:
        item, kind, ts = event["item"], event["kind"], event["ts"]
        counts[item, kind] = counts.get((item, kind), 0) + 1
        of_kind = latest.get(kind)
        if of_kind is None:
            latest[kind] = {item: ts}
        elif ts > of_kind.get(item, ts - 1):
            of_kind[item] = ts
    return Activity(counts, latest, len(events))


ACTIVITY_GROUP = {"_id": {"item": "$item", "kind": "$kind"}, "n": {"$sum": 1}, "last": {"$max": "$ts"}}


class Store:
    def __init__(self, db: Database, cache: Cache, variant: Variant) -> None:
        self.db = db
        self.cache = cache
        self.variant = variant
        self.hot = HotKeys() if variant.cache == "hot" else None  # activity of hot keys, in the instance

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

    # -- activity: never cached, but for a second in the instance with --cache hot ----------
    async def activities(self, users: list[int]) -> list[Activity]:
        return await self.run_all([partial(self._activity, u) for u in users])

    async def _activity(self, user: int) -> Activity:
        if self.hot is not None:
            return await self.hot.get(user, partial(self._read_activity, user))
        return await self._read_activity(user)

    async def _read_activity(self, user: int) -> Activity:
        if self.variant.grouping == "db":
            rows = await self.db.aggregate("events", [{"$match": {"user": user}}, {"$group": ACTIVITY_GROUP}])
            activity = Activity()
            for row in rows:
                activity.add(row["_id"]["item"], row["_id"]["kind"], row["n"], row["last"])
            return activity
        return group_events(await self.db.find("events", {"user": user}, {"_id": 0, "item": 1, "kind": 1, "ts": 1}))

    async def _similar_items(self, item: int, min_score: float) -> Similar | None:
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
