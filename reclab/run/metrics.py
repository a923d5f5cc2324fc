"""What a server did between two scrapes of its /metrics: requests served, db ops and round trips,
cache hits, Server-Timing, per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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

    @classmethod
    def between(cls, before: dict[str, Any], after: dict[str, Any]) -> MetricsDelta:
        return cls(
            served=after["requests"] - before["requests"],
            db_ops=after["db_ops"] - before["db_ops"],
            db_round_trips=after["db_round_trips"] - before["db_round_trips"],
            cache_hits=after["cache_hits"] - before["cache_hits"],
            cache_misses=after["cache_misses"] - before["cache_misses"],
            time_ms={k: after["time_ms"][k] - before["time_ms"][k] for k in after["time_ms"]},
            pace_runs=after.get("pace_runs", 0) - before.get("pace_runs", 0),
            pace_cpu_ns=after.get("pace_cpu_ns", 0) - before.get("pace_cpu_ns", 0),
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
    def cache_hit_ratio(self) -> float | None:
        lookups = self.cache_hits + self.cache_misses
        return self.cache_hits / lookups if lookups else None

    @property
    def pace_us(self) -> float | None:
        """CPU µs of one run of the server's reference work over the window: the core's pace."""
        return self.pace_cpu_ns / self.pace_runs / 1000 if self.pace_runs else None

    def server_timing_ms(self) -> dict[str, float]:
        """Mean time per request in each Server-Timing stage (db, cache, app, total)."""
        return {stage: self._per_request(ms) for stage, ms in self.time_ms.items()}
