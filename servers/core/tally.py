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

import contextlib
import fcntl
import mmap
import os
import tempfile
import uuid

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
    """`rows` rows of FIELDS float64 cells in shared memory: anonymous (shared with children forked
    later), or a file's (`path`: opened again by processes that are not forked, such as the workers a
    server of its own spawns), with each row's claimant (a pid) beside it."""

    def __init__(self, rows: int = 1, path: str | None = None, create: bool = True) -> None:
        self.rows = rows
        self.path = path
        sizes = (rows * len(FIELDS) * CELL, rows * GENERATION_SLOTS * CELL, rows * CELL)
        self._fd: int | None = None
        if path is None:
            self._memory = mmap.mmap(-1, sum(sizes))  # MAP_SHARED | MAP_ANONYMOUS
        else:
            self._fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0), 0o600)
            if create:
                os.ftruncate(self._fd, sum(sizes))
            self._memory = mmap.mmap(self._fd, sum(sizes))
        view = memoryview(self._memory)
        self._cells = view[: sizes[0]].cast("d")
        self._generations = view[sizes[0] : sizes[0] + sizes[1]].cast("Q")
        self._claims = view[sizes[0] + sizes[1] :].cast("q")
        self.row = 0  # the row this process adds to

    def claim_row(self) -> int:
        """In a worker of a file-backed block: take a row no live process holds (a row left by a
        worker gone goes on adding to what is there), under the file's lock. Raises if none is free."""
        if self._fd is None:
            raise RuntimeError("only a file-backed tally has rows to claim")
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            for row in range(self.rows):
                holder = self._claims[row]
                if holder == 0 or not _alive(holder):
                    self._claims[row] = os.getpid()
                    self.row = row
                    return row
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        raise RuntimeError(f"every row of the tally {self.path} is held by a live worker")

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

    def remove(self) -> None:
        """The master, stopping: its file of shared memory goes (the processes still mapping it keep it)."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_shared: Tally | None = None
TALLY_ENV = "RECLAB_TALLY"  # the file of a server's shared tally, for workers its server spawns (`share_file`)


def new_tally() -> Tally:
    """The tally a server core adds to: the master's shared block in one of its workers, else a
    private one-row block of its own."""
    return _shared if _shared is not None else Tally()


def share(rows: int) -> Tally:
    """In a master, before forking: a shared block of `rows` rows that its workers inherit."""
    global _shared
    _shared = Tally(rows)
    return _shared


def share_file(rows: int) -> Tally:
    """In a master whose workers a server of its own starts (forked or spawned): a block of `rows` rows
    in a file of shared memory, named to the workers in the environment (`TALLY_ENV`). The master
    removes the file when it stops (`Tally.remove`)."""
    global _shared
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    _shared = Tally(rows, path=os.path.join(folder, f"reclab-tally-{os.getpid()}-{uuid.uuid4().hex[:8]}"))
    os.environ[TALLY_ENV] = _shared.path or ""
    return _shared


def join_shared() -> Tally:
    """In a worker of a `share_file` master: the master's block, with a row of this process's own
    (inherited by a fork, or opened from the file the environment names)."""
    global _shared
    path = os.environ.get(TALLY_ENV)
    if _shared is None or _shared.path != path:
        if not path:
            raise RuntimeError(f"no shared tally: {TALLY_ENV} is not set")
        rows = os.path.getsize(path) // ((len(FIELDS) + GENERATION_SLOTS + 1) * CELL)
        _shared = Tally(rows, path=path, create=False)
    _shared.claim_row()
    return _shared
