"""The fix for a hot shard (`--cache hot`): an in-instance cache in front of the database for what
every request still reads from it, a user's activity, keyed by user.

On the supernode shape, sparse users' cold path reads the activity of the same few neighbours on
every request, so those neighbours' shard takes the load of everybody's cold path. Here each key is
kept for a short time to live (`HOT_TTL_S`, the staleness a real-time recommender accepts for it),
the map is bounded (least recently used out first), and concurrent misses of one key make one
database call (single-flight): the first caller's read is shared by the others, whose cancellation
does not cancel it. Reference data goes through the two-level cache as with `two-level`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

HOT_MAX_ENTRIES = 10_000
HOT_TTL_S = 1.0


class HotKeys:
    """Bounded, short-lived, single-flight: see the module's docstring."""

    def __init__(self, max_entries: int = HOT_MAX_ENTRIES, ttl_s: float = HOT_TTL_S) -> None:
        self._entries: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._flights: dict[Any, asyncio.Task[Any]] = {}
        self._max = max_entries
        self._ttl = ttl_s
        self.reads = 0  # database reads made (a miss with no read in flight)
        self.shared = 0  # misses that joined a read in flight

    async def get(self, key: Any, fetch: Callable[[], Awaitable[Any]]) -> Any:
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] >= time.monotonic():
                self._entries.move_to_end(key)
                return entry[1]
            del self._entries[key]
        flight = self._flights.get(key)
        if flight is None:
            self.reads += 1
            flight = self._flights[key] = asyncio.ensure_future(fetch())
            flight.add_done_callback(lambda done: self._landed(key, done))
        else:
            self.shared += 1
        return await asyncio.shield(flight)

    def _landed(self, key: Any, flight: asyncio.Task[Any]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if flight.cancelled() or flight.exception() is not None:
            return  # a failed read is not kept: the next miss reads again
        self._entries[key] = (time.monotonic() + self._ttl, flight.result())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
