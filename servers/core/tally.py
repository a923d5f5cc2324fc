"""The server's running totals (requests, responses by status, db and cache counts, stage times, pace
work) as rows of numbers that every worker process of one server shares.

The master maps one block of shared memory before it forks its workers; each worker adds to a row
of its own (a replacement worker takes a free row and goes on adding to what is there), and
/metrics, answered by whichever worker the connection reached, sums every row: totals since the
server started, over all its workers, never reset by a restart. A core that is not in a master's
worker (a test, an in-process core) gets a private block of one row.

Beside the totals, the block holds write generations: for each of `GENERATION_SLOTS` slots (a user id
modulo their number), how many writes each worker stored for the users of that slot. A worker adds
only to its own row and readers sum the rows, so the sum only grows, without locks; an in-process
cache of a user's activity keeps the sum it read with, and a read made before any worker's later write
is never served after that write (`servers.core.hot_keys`).
"""

from __future__ import annotations

import mmap

from servers.core import documents, history

STATUSES = ("200", "400", "404", "405", "408", "413", "414", "422", "431", "500", "503")
COUNTS = (
    "requests",
    "writes",  # POST /events answered 200: batches of events stored
    "events_written",
    "db_ops",
    "db_round_trips",
    "cache_ops",
    "cache_hits",
    "cache_misses",
    "cache_errors",
    "cache_skipped",
    "rule_code_skipped",  # rule code over its bounds or the request's budget (servers.core.judge)
    "rule_code_errors",
    "rules_reloads",
    "rules_reload_failures",  # a reload refused (the previous rules kept)
)
ADMISSION_COUNTS = ("admitted", "shed", "shed_late", "queue_ms")  # servers.core.admission
ADMISSION_GAUGES = ("admission_limit", "in_progress", "waiting")  # each worker's now; summed over workers
MAX_SHARDS = 8  # the database shards whose operations and time are counted apart (`servers.core.shards`)
FIELDS = (
    *COUNTS,
    "time_db",
    "time_cache",
    "time_app",
    "time_total",
    "pace_runs",
    "pace_cpu_ns",
    "workers_started",
    "workers_serving",  # a gauge, set by the master: its workers that reported ready and still serve
    *ADMISSION_COUNTS,
    *ADMISSION_GAUGES,
    "other_status",
    *(f"status_{status}" for status in STATUSES),
    *(f"shard{shard}_{what}" for shard in range(MAX_SHARDS) for what in ("ops", "ms")),
    *history.FIELDS,
    *documents.FIELDS,
)
INDEX = {name: i for i, name in enumerate(FIELDS)}
CELL = 8  # bytes: one float64
GENERATION_SLOTS = 4096


class Tally:
    """`rows` rows of FIELDS float64 cells in anonymous shared memory (shared with children forked later)."""

    def __init__(self, rows: int = 1) -> None:
        self.rows = rows
        self._memory = mmap.mmap(-1, rows * len(FIELDS) * CELL)  # MAP_SHARED | MAP_ANONYMOUS
        self._cells = memoryview(self._memory).cast("d")
        self._generation_memory = mmap.mmap(-1, rows * GENERATION_SLOTS * CELL)
        self._generations = memoryview(self._generation_memory).cast("Q")
        self.row = 0  # the row this process adds to

    def add(self, name: str, amount: float) -> None:
        self._cells[self.row * len(FIELDS) + INDEX[name]] += amount

    def set(self, name: str, value: float) -> None:
        self._cells[self.row * len(FIELDS) + INDEX[name]] = value

    def bump(self, key: int) -> None:
        """A write for `key` (a user id) was stored: later reads must not be served from before it."""
        self._generations[self.row * GENERATION_SLOTS + key % GENERATION_SLOTS] += 1

    def generation(self, key: int) -> int:
        """Writes stored for `key`'s slot so far, by every worker."""
        slot = key % GENERATION_SLOTS
        return sum(self._generations[row * GENERATION_SLOTS + slot] for row in range(self.rows))

    def total(self, name: str) -> float:
        column, width = INDEX[name], len(FIELDS)
        return sum(self._cells[row * width + column] for row in range(self.rows))


_shared: Tally | None = None


def new_tally() -> Tally:
    """The tally a server core adds to: the master's shared block in one of its workers, else a
    private one-row block of its own."""
    return _shared if _shared is not None else Tally()


def share(rows: int) -> Tally:
    """In a master, before forking: a shared block of `rows` rows that its workers inherit."""
    global _shared
    _shared = Tally(rows)
    return _shared
