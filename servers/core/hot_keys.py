"""The fix for a hot shard (`--cache hot`): an in-instance cache in front of the database for what
every request still reads from it, a user's activity, keyed by user.

On the supernode shape, sparse users' cold path reads the activity of the same few neighbours on
every request, so those neighbours' shard takes the load of everybody's cold path. Here each key is
kept for a short time to live (`HOT_TTL_S`, the staleness a real-time recommender accepts for it),
the map is bounded (least recently used out first), and concurrent misses of one key make one
database call (single-flight): the first caller's read is shared by the others, whose cancellation
does not cancel it. Reference data goes through the two-level cache as with `two-level`.

Writes: an entry is kept with the write generation of its key when its read began (`servers.core.tally`),
and is served only while no write for that key was stored since, by any worker of the server; a read
in flight is not joined by requests that came after a write. So a request that starts after a write's
answer reflects it, in every worker of one server. Across separate server instances (not sharing
memory) nothing tells one about another's writes: there an entry is at most `HOT_TTL_S` stale.
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

    def __init__(
        self,
        max_entries: int = HOT_MAX_ENTRIES,
        ttl_s: float = HOT_TTL_S,
        generation: Callable[[Any], int] = lambda key: 0,
    ) -> None:
        self._entries: OrderedDict[Any, tuple[float, Any, int]] = OrderedDict()
        self._flights: dict[Any, tuple[asyncio.Task[Any], int]] = {}
        self._max = max_entries
        self._ttl = ttl_s
        self._generation = generation  # writes stored for a key so far (servers.core.tally)
        self.reads = 0  # database reads made (a miss with no read in flight)
        self.shared = 0  # misses that joined a read in flight

    async def get(self, key: Any, fetch: Callable[[], Awaitable[Any]]) -> Any:
        generation = self._generation(key)
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] >= time.monotonic() and entry[2] == generation:
                self._entries.move_to_end(key)
                return entry[1]
            del self._entries[key]
        flight = self._flights.get(key)
        if flight is None or flight[1] != generation:  # a read begun before a write is not joined after it
            self.reads += 1
            task = asyncio.ensure_future(fetch())
            flight = self._flights[key] = (task, generation)
            task.add_done_callback(lambda done: self._landed(key, done, generation))
        else:
            self.shared += 1
        return await asyncio.shield(flight[0])

    def _landed(self, key: Any, task: asyncio.Task[Any], generation: int) -> None:
        flight = self._flights.get(key)
        if flight is not None and flight[0] is task:
            del self._flights[key]
        if task.cancelled() or task.exception() is not None:
            return  # a failed read is not kept: the next miss reads again
        if generation != self._generation(key):
            return  # a write was stored while it read: not kept
        self._entries[key] = (time.monotonic() + self._ttl, task.result(), generation)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
