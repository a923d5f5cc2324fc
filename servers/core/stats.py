"""Per-request counters (db ops, round trips, cache hits, stage times) and the server-wide totals.

A "round trip" is a period in which at least one database call is in flight, started from idle:
awaiting k calls one after another makes k round trips, gathering them makes one. Stage time is
the wall time of those periods, so concurrent calls are not double counted; app time is the
request's time outside any database or cache call. When db and cache calls overlap (gather),
db + cache + app can exceed the total.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from contextlib import AbstractAsyncContextManager
from typing import Any

from servers.core.documents import COLLECTIONS, Document, bytes_estimate, measured_bytes, stratum
from servers.core.documents import FIELDS as DOCUMENT_FIELDS
from servers.core.history import BUCKETS, bucket_of, field_of
from servers.core.tally import COUNTS, STATUSES, Tally


class _Stage:
    """Wall time during which one or more calls of a kind (db or cache) were in flight."""

    __slots__ = ("busy_since", "calls", "in_flight", "periods", "seconds")

    def __init__(self) -> None:
        self.in_flight = 0
        self.busy_since = 0.0
        self.seconds = 0.0
        self.calls = 0
        self.periods = 0

    def enter(self) -> None:
        self.calls += 1
        if self.in_flight == 0:
            self.periods += 1
            self.busy_since = time.perf_counter()
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.seconds += time.perf_counter() - self.busy_since


class RequestStats:
    """What one request cost: database and cache calls and their time (made for every request:
    a slotted class, not a dataclass with field factories)."""

    __slots__ = (
        "_slots",
        "cache",
        "cache_errors",
        "cache_hits",
        "cache_misses",
        "cache_skipped",
        "db",
        "docs",
        "docs_by",
        "fanout",
        "history",
        "io",
        "sampled",
        "started",
        "total_seconds",
        "written",
    )

    def __init__(self, fanout: int = 0) -> None:
        self.started = time.perf_counter()
        self.db = _Stage()
        self.cache = _Stage()
        self.io = _Stage()  # db or cache in flight: what is not app time
        self.cache_hits = 0
        self.cache_misses = 0
        self.cache_errors = 0  # cache calls that failed or timed out (the database answered instead)
        self.cache_skipped = 0  # cache calls skipped by the open circuit breaker
        self.total_seconds = 0.0
        self.docs = 0  # documents the database returned (servers.core.documents) ...
        self.docs_by: dict[str, int] = {}  # ... by collection
        self.sampled: list[tuple[str, int, int]] = []  # calls whose bytes were measured: (collection, documents, bytes)
        self.history = -1  # events in the history of the request's user (-1: the request names no user)
        self.written = -1  # events a write stored (-1: the request is a read)
        self.fanout = fanout  # database calls this request may have in flight at once (0: no cap)
        self._slots: asyncio.Semaphore | None = None

    def fanout_slot(self) -> AbstractAsyncContextManager[object]:
        """Held for one database call: at most `fanout` of them are in flight for this request."""
        if not self.fanout:
            return contextlib.nullcontext()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.fanout)
        return self._slots

    def finish(self) -> None:
        self.total_seconds = time.perf_counter() - self.started

    @property
    def app_seconds(self) -> float:
        return max(0.0, self.total_seconds - self.io.seconds)

    def server_timing(self) -> str:
        return (
            f"db;dur={self.db.seconds * 1000:.3f}, cache;dur={self.cache.seconds * 1000:.3f}, "
            f"app;dur={self.app_seconds * 1000:.3f}, total;dur={self.total_seconds * 1000:.3f}"
        )


_current: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar("reclab_request_stats", default=None)


def begin_request(fanout: int = 0) -> RequestStats:
    stats = RequestStats(fanout=fanout)
    _current.set(stats)
    return stats


def current() -> RequestStats:
    """The stats of the request being served (a throwaway one outside a request)."""
    stats = _current.get()
    return stats if stats is not None else RequestStats()


def count_documents(collection: str, found: list[Document] | Document | None) -> None:
    """Account what one database call to `collection` returned (a list of documents, one document, or
    none) to the current request, its bytes measured on some calls (`servers.core.documents`)."""
    request = current()
    n = len(found) if isinstance(found, list) else int(found is not None)
    name = stratum(collection)
    request.docs += n
    request.docs_by[name] = request.docs_by.get(name, 0) + n
    size = measured_bytes(name, found)
    if size is not None:
        request.sampled.append((name, n, size))


class timed:
    """Account one database ("db") or cache ("cache") call to the current request.

    A small class rather than an `asynccontextmanager`: it runs on every call of every request."""

    __slots__ = ("_request", "_stage")

    def __init__(self, kind: str) -> None:
        self._request = current()
        self._stage: _Stage = getattr(self._request, kind)

    async def __aenter__(self) -> None:
        self._stage.enter()
        self._request.io.enter()

    async def __aexit__(self, *exc_info: object) -> None:
        self._request.io.leave()
        self._stage.leave()


class ServerMetrics:
    """Totals since the server started, over all its workers (`servers.core.tally`), served at /metrics."""

    def __init__(self, tally: Tally, shards: int = 1) -> None:
        self._tally = tally
        self._shards = shards  # above 1: each shard's operations and time are in the snapshot

    def record(self, stats: RequestStats, status: int) -> None:
        add = self._tally.add
        add("requests", 1)
        code = str(status)
        add(f"status_{code}" if code in STATUSES else "other_status", 1)
        add("db_ops", stats.db.calls)
        add("db_round_trips", stats.db.periods)
        add("cache_ops", stats.cache.calls)
        add("cache_hits", stats.cache_hits)
        add("cache_misses", stats.cache_misses)
        add("cache_errors", stats.cache_errors)
        add("cache_skipped", stats.cache_skipped)
        add("time_db", stats.db.seconds * 1000)
        add("time_cache", stats.cache.seconds * 1000)
        add("time_app", stats.app_seconds * 1000)
        add("time_total", stats.total_seconds * 1000)
        for collection, docs in stats.docs_by.items():
            add(f"db_docs_{collection}", docs)
        for collection, docs, size in stats.sampled:
            add(f"db_sampled_docs_{collection}", docs)
            add(f"db_sampled_bytes_{collection}", size)
        if stats.written >= 0:  # a write: counted apart, in no history bucket
            add("writes", status == 200)
            add("events_written", stats.written)
            return
        history = bucket_of(stats.history)
        add(f"{history}_requests", 1)
        add(f"{history}_docs", stats.docs)
        add(f"{history}_db", stats.db.seconds * 1000)
        add(f"{history}_app", stats.app_seconds * 1000)
        add(f"{history}_total", stats.total_seconds * 1000)

    def snapshot(self) -> dict[str, Any]:
        total = self._tally.total
        responses = {code: int(n) for code in STATUSES if (n := total(f"status_{code}"))}
        if other := total("other_status"):
            responses["other"] = int(other)
        return {
            **{name: int(total(name)) for name in COUNTS},
            "responses": responses,
            "time_ms": {stage: round(total(f"time_{stage}"), 3) for stage in ("db", "cache", "app", "total")},
            "workers_started": int(total("workers_started")),
            "workers": int(total("workers_serving")) or 1,  # 1: a core outside a master
            "db_docs": int(sum(total(f"db_docs_{name}") for name in COLLECTIONS)),
            "db_bytes": round(bytes_estimate({name: total(name) for name in DOCUMENT_FIELDS}) or 0),
            "db_documents": {name: total(name) for name in DOCUMENT_FIELDS},  # for deltas (servers.core.documents)
            "by_history": [self._history(label) for label in BUCKETS if total(f"{field_of(label)}_requests")],
            **({"shards": [self._shard(i) for i in range(self._shards)]} if self._shards > 1 else {}),
        }

    def _history(self, label: str) -> dict[str, Any]:
        total, name = self._tally.total, field_of(label)
        return {
            "history": label,
            "requests": int(total(f"{name}_requests")),
            "docs": int(total(f"{name}_docs")),
            "time_ms": {stage: round(total(f"{name}_{stage}"), 3) for stage in ("db", "app", "total")},
        }

    def _shard(self, shard: int) -> dict[str, Any]:
        total = self._tally.total
        return {"ops": int(total(f"shard{shard}_ops")), "time_ms": round(total(f"shard{shard}_ms"), 3)}
