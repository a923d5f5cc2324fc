"""A real MongoDB and Redis reached by URI: checked within seconds, and MongoDB loaded with the dataset.

Loading goes through the driver in batches, with the indexes the recommender needs, and is skipped
when the database already holds the same dataset (same content hash).
"""

from __future__ import annotations

import redis
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from reclab.errors import ServiceError
from servers.core.activity import ACTIVITY, with_activity
from servers.core.drivers import CONNECT_TIMEOUT_MS
from servers.core.runtime import DB_NAME
from servers.core.shards import Partitioning
from servers.core.uris import hidden, shown
from workloads.dataset import INDEXES, Dataset

BATCH = 1000


def _client(uri: str) -> MongoClient:
    return MongoClient(uri, serverSelectionTimeoutMS=CONNECT_TIMEOUT_MS, connectTimeoutMS=CONNECT_TIMEOUT_MS)


def check_mongo(uri: str) -> None:
    """Fail with a one-line ServiceError unless MongoDB answers a ping at `uri` (its password never in the message)."""
    try:
        client = _client(uri)
    except (PyMongoError, ValueError) as error:
        raise ServiceError(hidden(f"bad MongoDB URI {shown(uri)!r}: {error}", uri)) from None
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        raise ServiceError(
            f"cannot reach MongoDB at {shown(uri)} within {CONNECT_TIMEOUT_MS / 1000:.0f} s: {error.__class__.__name__}"
        ) from None
    finally:
        client.close()


def check_redis(url: str) -> None:
    """Fail with a one-line ServiceError unless Redis answers PING at `url`."""
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT_MS / 1000, socket_timeout=CONNECT_TIMEOUT_MS / 1000
        )
        client.ping()
        client.close()
    except (redis.RedisError, ValueError) as error:
        raise ServiceError(hidden(f"cannot reach Redis at {shown(url)}: {error}", url)) from None


UNSTAMPED = {"shard": "0/1", "partition": "modulo"}  # what a database loaded whole (or by older versions) says


def load_into(uri: str, dataset: Dataset, db_name: str = DB_NAME, shard: int = 0, split: Partitioning | None = None) -> bool:
    """Make the database at `uri` hold `dataset` (shard `shard` of it as `split` spreads it, see
    `servers.core.shards`); returns True if it had to load."""
    split = split or Partitioning()
    stamp = split.stamp(shard)
    client = _client(uri)
    try:
        db = client[db_name]
        meta = db["meta"].find_one({"_id": "dataset"})
        loaded = meta or {}
        same = loaded.get("hash") == dataset.content_hash() and all(loaded.get(k, d) == stamp[k] for k, d in UNSTAMPED.items())
        if same and (ACTIVITY in db.list_collection_names() or not dataset.collections.get("events")):
            return False
        db["meta"].drop()  # first: an interrupted load must not look like a complete one
        for name, docs in with_activity(dataset.collections).items():
            db[name].drop()
            mine = [doc for doc in docs if split.holds(name, doc, shard)] if name != "meta" else []
            for start in range(0, len(mine), BATCH):
                db[name].insert_many(mine[start : start + BATCH], ordered=False)
        for name, fields in INDEXES.items():
            for field_name in fields:
                db[name].create_index(field_name)
        db["meta"].insert_many([{**doc, **stamp} for doc in dataset.collections.get("meta", [])])  # last: complete
        return True
    finally:
        client.close()
