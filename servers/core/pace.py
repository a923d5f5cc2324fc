"""How fast this server's core runs Python right now: a fixed piece of interpreter work, run every
50 ms on the server's own event loop and timed in thread CPU time.

A benchmark host's CPU speed can drift by tens of percent from one second to the next (virtual
CPUs share physical cores with other tenants); the lab divides the server's CPU time per request by
this pace, measured in the same process, on the same core, over the same window, to compare variants
at one speed. The work costs about 1% of the server's CPU; /metrics reports its runs and CPU time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from servers.core.tally import Tally

EVERY_S = 0.05
ROUNDS = 10


def reference_work() -> int:
    """A fixed mix of what the recommender does in Python: dict updates, sorting, small objects."""
    total = 0
    for round_ in range(ROUNDS):
        scores: dict[int, float] = {}
        for i in range(40):
            key = (i * 7919 + round_) % 97
            scores[key] = scores.get(key, 0.0) + i * 0.5
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        total += len([{"id": k, "score": round(v, 3)} for k, v in ranked[:20]])
    return total


class Pace:
    """Counts the reference work's runs and CPU nanoseconds since the server started (over all its
    workers: `servers.core.tally`)."""

    def __init__(self, tally: Tally) -> None:
        self._tally = tally
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(EVERY_S)
            started = time.thread_time_ns()
            reference_work()
            self._tally.add("pace_cpu_ns", time.thread_time_ns() - started)
            self._tally.add("pace_runs", 1)

    def snapshot(self) -> dict[str, int]:
        return {"pace_runs": int(self._tally.total("pace_runs")), "pace_cpu_ns": int(self._tally.total("pace_cpu_ns"))}
