"""What a server did between two scrapes of its /metrics: requests served, db ops and round trips,
documents and bytes the database returned, cache hits, Server-Timing, per request, and the same by
the size of the requests' users' histories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servers.core.documents import bytes_estimate


@dataclass(frozen=True)
class MetricsDelta:
    served: int
    db_ops: int
    db_round_trips: int
    cache_hits: int
    cache_misses: int
    time_ms: dict[str, float]
    pace_runs: int = 0  # runs of the server's reference work (servers.core.pace)
    pace_cpu_ns: int = 0
    restarted: bool = False  # a worker was replaced between the scrapes (older servers: the counts are only the new one's)
    shards: tuple[tuple[int, float], ...] = ()  # a sharded database: each shard's (operations, time in ms)
    db_docs: int = 0  # documents the database returned
    db_bytes: float | None = None  # their BSON bytes, estimated from the calls measured (servers.core.documents)
    by_history: tuple[HistoryDelta, ...] = ()  # by the size of the requests' users' histories (servers.core.history)
    admission: AdmissionDelta | None = None  # a server with admission control (servers.core.admission)

    @classmethod
    def between(cls, before: dict[str, Any], after: dict[str, Any]) -> MetricsDelta:
        """What the server counted between two scrapes, over all its workers; `restarted` if a worker was
        started in between. (From a server without `workers_started`, whose counts are its one worker's:
        if a new worker answered the second scrape, only what that worker counted.)"""
        if "workers_started" in after:  # totals over every worker, kept across restarts
            restarted = before.get("workers_started") != after["workers_started"]
        else:  # a server whose counts are its one worker's
            restarted = before.get("worker") != after.get("worker")
            if restarted:
                before = {}

        def delta(name: str) -> int:
            return int(after.get(name, 0) - before.get(name, 0))

        before_ms = before.get("time_ms", {})
        earlier = {row["history"]: row for row in before.get("by_history", [])}
        return cls(
            served=delta("requests"),
            db_ops=delta("db_ops"),
            db_round_trips=delta("db_round_trips"),
            cache_hits=delta("cache_hits"),
            cache_misses=delta("cache_misses"),
            time_ms={k: after["time_ms"][k] - before_ms.get(k, 0.0) for k in after["time_ms"]},
            pace_runs=delta("pace_runs"),
            pace_cpu_ns=delta("pace_cpu_ns"),
            restarted=restarted,
            shards=tuple(
                (int(now["ops"] - then["ops"]), now["time_ms"] - then["time_ms"])
                for now, then in zip(
                    after.get("shards", []), before.get("shards") or [{"ops": 0, "time_ms": 0.0}] * 64, strict=False
                )
            ),
            db_docs=delta("db_docs"),
            db_bytes=_bytes(before.get("db_documents", {}), after.get("db_documents", {})),
            by_history=tuple(
                delta_row
                for row in after.get("by_history", [])
                if (delta_row := HistoryDelta.between(earlier.get(row["history"]), row)).requests
            ),
            admission=AdmissionDelta.between(before.get("admission", {}), after.get("admission", {})),
        )

    def _per_request(self, total: float) -> float:
        return total / max(1, self.served)

    @property
    def db_ops_per_request(self) -> float:
        return self._per_request(self.db_ops)

    @property
    def db_round_trips_per_request(self) -> float:
        return self._per_request(self.db_round_trips)

    @property
    def db_docs_per_request(self) -> float:
        return self._per_request(self.db_docs)

    @property
    def db_bytes_per_request(self) -> float | None:
        """BSON bytes the database returned per request (None where no call's bytes were measured)."""
        return None if self.db_bytes is None else self._per_request(self.db_bytes)

    @property
    def cache_hit_ratio(self) -> float | None:
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else None

    @property
    def pace_us(self) -> float | None:
        """CPU µs of one run of the server's reference work over the window: the core's pace."""
        return self.pace_cpu_ns / self.pace_runs / 1000 if self.pace_runs else None

    @property
    def imbalance(self) -> float | None:
        """The busiest shard's operations over the mean shard's (1: even; N: all on one of N)."""
        ops = [n for n, _ in self.shards]
        total = sum(ops)
        if len(ops) < 2 or total == 0:
            return None
        return max(ops) * len(ops) / total

    def server_timing_ms(self) -> dict[str, float]:
        """Mean time per request in each Server-Timing stage (db, cache, app, total)."""
        return {stage: self._per_request(ms) for stage, ms in self.time_ms.items()}


def _bytes(before: dict[str, float], after: dict[str, float]) -> float | None:
    """The bytes estimate (servers.core.documents) of what was counted between two scrapes."""
    return bytes_estimate({name: value - before.get(name, 0.0) for name, value in after.items()})


@dataclass(frozen=True)
class AdmissionDelta:
    """Admission control between two scrapes: requests admitted and shed (`shed_late`: after waiting),
    milliseconds they waited, and the limit (summed over workers) at the second scrape."""

    mode: str
    admitted: int
    shed: int
    shed_late: int
    queue_ms: float
    limit: int

    @classmethod
    def between(cls, before: dict[str, Any], after: dict[str, Any]) -> AdmissionDelta | None:
        """None for a server without admission control (or one too old to say)."""
        if after.get("mode", "none") == "none":
            return None

        def delta(name: str) -> float:
            return after.get(name, 0) - before.get(name, 0)

        return cls(after["mode"], int(delta("admitted")), int(delta("shed")), int(delta("shed_late")), delta("queue_ms"),
                   int(after.get("limit", 0)))  # fmt: skip


@dataclass(frozen=True)
class HistoryDelta:
    """The requests of one history-size bucket between two scrapes: how many, the documents the
    database returned for them, and their database, app and total time (ms)."""

    history: str  # the bucket's label (servers.core.history.BUCKETS)
    requests: int
    docs: int
    db_ms: float
    app_ms: float
    total_ms: float

    @classmethod
    def between(cls, before: dict[str, Any] | None, after: dict[str, Any]) -> HistoryDelta:
        then = before or {"requests": 0, "docs": 0, "time_ms": {}}
        ms = {stage: after["time_ms"][stage] - then["time_ms"].get(stage, 0.0) for stage in ("db", "app", "total")}
        return cls(after["history"], after["requests"] - then["requests"], after["docs"] - then["docs"],
                   ms["db"], ms["app"], ms["total"])  # fmt: skip


def _shard_deltas(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> tuple[tuple[int, float], ...]:
    zero = {"ops": 0, "time_ms": 0.0}
    then = before + [zero] * (len(after) - len(before))
    return tuple((int(a["ops"] - b["ops"]), a["time_ms"] - b["time_ms"]) for a, b in zip(after, then, strict=False))
