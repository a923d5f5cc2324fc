"""What a MongoDB server counts of its own work (`serverStatus`): documents examined by queries and
documents returned, summed over the database's servers (shards).

A real MongoDB keeps `metrics.queryExecutor.scannedObjects` and `metrics.document.returned`; an
engine that does not (the embedded mongoeco) is asked once and never again, and the lab records
the documents examined as unknown. Reading needs only the `serverStatus` privilege; a server that
refuses it, or does not answer within a second, is treated as one that does not say (for that phase).
"""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

READ_TIMEOUT_MS = 1000


def work_counters(status: dict[str, Any]) -> dict[str, float] | None:
    """Documents examined and returned so far, from one `serverStatus` reply (None if it does not say)."""
    metrics = status.get("metrics")
    if not isinstance(metrics, dict):
        return None
    examined = (metrics.get("queryExecutor") or {}).get("scannedObjects")
    returned = (metrics.get("document") or {}).get("returned")
    if not isinstance(examined, int | float) or isinstance(examined, bool):
        return None
    return {"examined": float(examined), "returned": float(returned) if isinstance(returned, int | float) else 0.0}


class EngineCounters:
    """Clients to every server of the database, kept for a bench, read at the edges of each phase."""

    def __init__(self, uris: list[str]) -> None:
        bounds: dict[str, Any] = {"serverSelectionTimeoutMS": READ_TIMEOUT_MS, "connectTimeoutMS": READ_TIMEOUT_MS}
        self._clients: list[MongoClient[dict[str, Any]]] = [MongoClient(uri, timeoutMS=READ_TIMEOUT_MS, **bounds) for uri in uris]

    @classmethod
    def probe(cls, uris: list[str]) -> EngineCounters | None:
        """Counters for these servers if every one of them keeps them, else None."""
        counters = cls(uris)
        if counters.read() is None:
            counters.close()
            return None
        return counters

    def read(self) -> dict[str, float] | None:
        """The counters summed over the servers; None if one of them does not say (or cannot be read)."""
        total = {"examined": 0.0, "returned": 0.0}
        for client in self._clients:
            try:
                counters = work_counters(client.admin.command("serverStatus"))
            except PyMongoError:
                return None
            if counters is None:
                return None
            for name, value in counters.items():
                total[name] += value
        return total

    def close(self) -> None:
        for client in self._clients:
            client.close()
