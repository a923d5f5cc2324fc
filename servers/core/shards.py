"""Data spread over several MongoDB servers (shards), and the reads routed to the one that holds them.

The partitioning, stated once here (`PARTITION`): a user's events by user id; users and their
similar-user lists by user id; items, their similarity lists and the category lists by their own key
(item id, category): so one hot item, or one user everybody's cold path reads, lands on one shard,
as it did in production. How a key picks its shard is the spec's `[shards] partition`:
`modulo` (the default) puts an integer key on shard `key mod N` (neighbouring ids on neighbouring
shards) and a string on `crc32(key) mod N`; `hashed` puts every key on `crc32(key) mod N`, as a
hashed shard key does. Collections outside the table (the dataset's `meta`) are on every shard.

Each shard's `meta` document says which shard it is and how the data was split (`shard` "i/N",
`partition`), written when it is loaded; the server reads them all at start and routes by what the
data says, refusing shards given out of order or split differently.

Several shards are given to the server as several MongoDB URIs, separated by spaces, in place of one
(`--mongo-uri "mongodb://a mongodb://b mongodb://c"`). Every read of the store names its key, so a
read goes to one shard; a read without its key (none today) would ask every shard and merge. A write
goes to the shards of its documents' keys (a user's events and activity: that user's shard).
Each shard's operations and time are added to the server's totals (`/metrics` `shards`).
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass
from typing import Any

from servers.core.drivers import Database, Document, Update
from servers.core.tally import MAX_SHARDS, Tally

PARTITION = {
    "events": "user",
    "activity": "_id",
    "users": "_id",
    "user_similar": "_id",
    "items": "_id",
    "item_similar": "_id",
    "category_top": "_id",
}


def shard_uris(mongo_uri: str) -> list[str]:
    """The shards' URIs (one URI: one database, no sharding)."""
    uris = mongo_uri.split()
    if not 1 <= len(uris) <= MAX_SHARDS:
        raise ValueError(f"give 1 to {MAX_SHARDS} MongoDB URIs, separated by spaces; got {len(uris)}")
    return uris


METHODS = ("modulo", "hashed")


@dataclass(frozen=True)
class Partitioning:
    """How documents are spread over `shards` shards (`method`: one of METHODS)."""

    shards: int = 1
    method: str = "modulo"

    def shard_of(self, key: Any) -> int:
        """The shard that holds `key`."""
        if self.shards == 1:
            return 0
        if isinstance(key, int) and self.method == "modulo":
            return key % self.shards
        return zlib.crc32(str(key).encode()) % self.shards

    def holds(self, collection: str, doc: Document, shard: int) -> bool:
        """Whether a document belongs on `shard` (documents of unpartitioned collections are on all)."""
        field = PARTITION.get(collection)
        return field is None or self.shard_of(doc[field]) == shard

    def stamp(self, shard: int) -> Document:
        """What shard `shard`'s `meta` document says of it."""
        return {"shard": f"{shard}/{self.shards}", "partition": self.method}


def partitioning_of(metas: list[Document | None], where: list[str]) -> Partitioning:
    """The partitioning the shards' `meta` documents state, in the order given (`where`: each
    shard's address, for the errors); a ValueError if they are not one dataset split one way."""
    shards = len(metas)
    first = metas[0] or {}
    method = first.get("partition", "modulo")
    for number, (meta, address) in enumerate(zip(metas, where, strict=True)):
        if meta is None:
            raise ValueError(f"{address} holds no reclab dataset")
        stated = meta.get("shard", "0/1")
        if stated != f"{number}/{shards}":
            raise ValueError(f"{address} holds shard {stated} of the dataset, but was given as shard {number}/{shards}")
        if meta.get("hash") != first.get("hash") or meta.get("partition", "modulo") != method:
            raise ValueError(f"{address} holds another dataset or another split than {where[0]}")
    return Partitioning(shards, method)


class ShardedDatabase:
    """The `Database` interface over one database per shard; each call goes to the shard of its key
    and is counted as that shard's."""

    def __init__(self, shards: list[Database], tally: Tally, partitioning: Partitioning) -> None:
        self.shards = shards
        self.tally = tally
        self.partitioning = partitioning

    def _route(self, collection: str, query: Document) -> int | None:
        field = PARTITION.get(collection)
        if field is None:
            return 0  # on every shard: the first answers
        key = query.get(field)
        if key is None or isinstance(key, dict):
            return None  # no single key: every shard
        return self.partitioning.shard_of(key)

    async def _on(self, shard: int, call: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call
        finally:
            self.tally.add(f"shard{shard}_ops", 1)
            self.tally.add(f"shard{shard}_ms", (time.perf_counter() - started) * 1000)

    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None:
        shard = self._route(collection, query)
        if shard is not None:
            return await self._on(shard, self.shards[shard].find_one(collection, query, projection))
        for number, database in enumerate(self.shards):
            if (doc := await self._on(number, database.find_one(collection, query, projection))) is not None:
                return doc
        return None

    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]:
        shard = self._route(collection, query)
        if shard is not None:
            return await self._on(shard, self.shards[shard].find(collection, query, projection))
        parts = await asyncio.gather(*(self._on(n, db.find(collection, query, projection)) for n, db in enumerate(self.shards)))
        return [doc for part in parts for doc in part]

    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]:
        match = pipeline[0].get("$match", {}) if pipeline else {}
        shard = self._route(collection, match)
        if shard is None:
            raise ValueError(f"an aggregation on {collection} must match on {PARTITION[collection]!r} (one shard)")
        return await self._on(shard, self.shards[shard].aggregate(collection, pipeline))

    async def insert_many(self, collection: str, documents: list[Document]) -> None:
        field = PARTITION[collection]
        parts: dict[int, list[Document]] = {}
        for document in documents:
            parts.setdefault(self.partitioning.shard_of(document[field]), []).append(document)
        await asyncio.gather(*(self._on(n, self.shards[n].insert_many(collection, part)) for n, part in parts.items()))

    async def upsert_many(self, collection: str, updates: list[Update]) -> None:
        field = PARTITION[collection]
        parts: dict[int, list[Update]] = {}
        for update in updates:
            parts.setdefault(self.partitioning.shard_of(update[0][field]), []).append(update)
        await asyncio.gather(*(self._on(n, self.shards[n].upsert_many(collection, part)) for n, part in parts.items()))

    async def ping(self) -> None:
        await asyncio.gather(*(database.ping() for database in self.shards))

    async def close(self) -> None:
        for database in self.shards:
            await database.close()
