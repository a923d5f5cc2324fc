"""Builds the core from settings: driver, cache, rules, dataset clock; shared by every framework."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from servers.core.api import RecommenderApi
from servers.core.cache import Cache, LocalCache, NoCache, RedisCache, TwoLevelCache
from servers.core.cache_guard import Breaker, GuardedCache
from servers.core.drivers import Database, MotorDatabase, PyMongoDatabase, write_concern_of
from servers.core.limits import Limits
from servers.core.recommender import Recommender
from servers.core.rules import DEFAULT_RULES, load_rules
from servers.core.shards import ShardedDatabase, partitioning_of, shard_uris
from servers.core.store import Store
from servers.core.tally import new_tally
from servers.core.uris import hidden, shown
from servers.core.variant import Variant
from servers.core.wire import WireDatabase

DB_NAME = "reclab"


@dataclass(frozen=True)
class Settings:
    mongo_uri: str
    redis_url: str | None = None
    variant: Variant = field(default_factory=Variant)
    rules_path: Path = DEFAULT_RULES
    db_name: str = DB_NAME
    framework: str = "core"
    cache_namespace: str = ""  # prefix of every Redis key of this server
    limits: Limits = field(default_factory=Limits)
    rules_as_code: bool = False  # max_price and boost run as rule code (the bench's rules=code)
    watch_rules: bool = False  # reload the rules when their file changes (SIGHUP reloads them anyway)
    write_concern: str = "1"  # MongoDB's w for writes: members, or "majority" (servers.core.drivers)
    admission: str = "none"  # admission control: none | fixed | adaptive (servers.core.admission; a server's flag
    # defaults to DEFAULT_ADMISSION, a core built in-process has none unless asked)
    pace: bool = True  # run the reference work every 50 ms (servers.core.pace); off where instructions are counted


class Runtime:
    """An opened core: the API plus what must be closed at shutdown."""

    def __init__(self, api: RecommenderApi, db: Database, store: Store) -> None:
        self.api = api
        self.db = db
        self.store = store

    async def close(self) -> None:
        await self.api.pace.stop()
        await self.store.cache.close()
        await self.db.close()


async def open_runtime(settings: Settings) -> Runtime:
    """Connect and check the database (clear error within seconds), load rules, read the dataset clock."""
    rules = load_rules(settings.rules_path, settings.rules_as_code)
    tally = new_tally()
    uris = shard_uris(settings.mongo_uri)
    driver, limits, concern = settings.variant.driver, settings.limits, settings.write_concern
    shards = [open_database(driver, uri, settings.db_name, limits, concern) for uri in uris]
    db: Database = shards[0]
    try:
        metas = await asyncio.gather(*(shard.find_one("meta", {"_id": "dataset"}) for shard in shards))
    except Exception as error:
        await _close_all(shards)
        raise ConnectionError(
            f"cannot reach MongoDB at {shown(settings.mongo_uri)}: {hidden(str(error), settings.mongo_uri)}"
        ) from error
    meta = metas[0]
    if meta is None:
        await _close_all(shards)
        raise RuntimeError(f"MongoDB at {shown(settings.mongo_uri)} holds no reclab dataset (database {settings.db_name!r})")
    try:
        partitioning = partitioning_of(metas, uris)
    except ValueError as error:
        await _close_all(shards)
        raise RuntimeError(f"the MongoDB shards do not fit together: {error}") from None
    if len(shards) > 1:
        db = ShardedDatabase(shards, tally, partitioning)
    cache = open_cache(settings.variant.cache, settings.redis_url, settings.cache_namespace, settings.limits)
    try:
        await cache.ping()
    except Exception as error:
        await cache.close()
        await db.close()
        raise ConnectionError(f"cannot reach Redis at {shown(settings.redis_url or '')}: {error.__class__.__name__}") from error
    store = Store(db, cache, settings.variant, tally)
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    describe = {
        "framework": settings.framework, "variant": settings.variant.as_dict(), "dataset": meta.get("hash"), "loop": loop,
        "admission": settings.admission,
    }  # fmt: skip
    pings = {"mongodb": db.ping, **({"redis": cache.ping} if settings.variant.needs_redis else {})}
    recommender = Recommender(store, meta["now"], lambda name: tally.add(name, 1))
    api = RecommenderApi(recommender, rules, describe, settings.limits, pings, tally, len(shards), settings.admission)
    api.watch_rules = settings.watch_rules
    if settings.pace:
        api.pace.start()
    return Runtime(api, db, store)


async def _close_all(databases: list[Database]) -> None:
    for database in databases:
        await database.close()


def open_database(driver: str, uri: str, name: str, limits: Limits | None = None, write_concern: str = "1") -> Database:
    limits = limits or Limits()
    concern = write_concern_of(write_concern)
    if driver == "pymongo":
        return PyMongoDatabase(uri, name, limits, concern)
    if driver == "motor":
        return MotorDatabase(uri, name, limits, concern)
    if driver == "wire":
        return WireDatabase(uri, name, limits, concern)
    raise ValueError(f"unknown driver {driver!r}")


def open_cache(kind: str, redis_url: str | None, namespace: str = "", limits: Limits | None = None) -> Cache:
    """The cache of a variant; a Redis layer is guarded (bounded in time, skipped when it fails)."""
    limits = limits or Limits()
    if kind == "none":
        return NoCache()
    if kind == "local":
        return LocalCache()
    if redis_url is None:
        raise ValueError(f"cache {kind!r} needs a Redis URL")
    timeout_s = limits.cache_timeout_ms / 1000
    redis = RedisCache(redis_url, timeout_s, namespace=namespace)
    shared = GuardedCache(redis, 2 * timeout_s, Breaker(limits.breaker_failures, limits.breaker_reset_s))
    if kind == "redis":
        return shared
    if kind in ("two-level", "hot"):  # hot: the same for reference data (servers.core.hot_keys)
        return TwoLevelCache(LocalCache(), shared)
    raise ValueError(f"unknown cache {kind!r}")
