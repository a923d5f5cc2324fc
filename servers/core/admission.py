"""Admission control: how many requests a worker works on at once, and which it refuses at once when
more arrive than it can answer in time. Framework-free, so every framework admits and refuses alike.

- `none`: every request is worked on as it comes (a flood makes every request wait behind all others);
- `fixed`: at most `admission_limit` requests in progress; the others wait in arrival order, at most
  `admission_queue` of them;
- `adaptive`: the same, with the limit following the measured time in progress (below).

A request is refused (`Overloaded`: 503, Retry-After, no database work done) *at once* when the queue
is full or when its expected wait is beyond its budget (`admission_wait_ms`, a share of the deadline).
The expected wait is its place in the queue times the mean time in progress over the limit (how often a
place frees up), taken twice (`ESTIMATE_MARGIN`: a recommendation's time follows its user's history, so
the gaps between freed places vary). One that was let into the queue and still waits after twice its
budget (`PATIENCE`) is refused then (`shed_late`, rare: the estimate was wrong, or the work stalled).

The adaptive limit is additive-increase/multiplicative-decrease over windows of completed requests, as
Netflix's concurrency-limits library does it (`AIMDLimit` inside a `WindowedLimit`): after each window
(at least `WINDOW_REQUESTS` completions and `WINDOW_S`) in which the limit was reached, the limit is
cut by `BACKOFF` if their mean time in progress exceeded the target (`admission_latency_ms`), else it
grows by one; a window that never reached the limit leaves it (slow requests the limit did not crowd,
on a busy machine or for a heavy user, are not the limit's doing). It stays within `MIN_LIMIT` and
`MAX_LIMIT`. Gradient controllers (Netflix's Gradient2, Envoy's adaptive concurrency filter) read
queueing from latency *changes* against a minimum or long-run latency; a recommendation's latency
follows its user's history (20 to 700+ events) as much as the queue, so a gradient here mostly
measures which users came by; a target on the time in progress is what the goodput objective asks for.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from servers.core.limits import Limits
from servers.core.tally import Tally

ADMISSIONS = ("none", "fixed", "adaptive")
DEFAULT_ADMISSION = "adaptive"  # a server's when not told (`--admission`); the README says why
EWMA_WEIGHT = 0.05  # the mean time in progress follows each completion by this share
WINDOW_REQUESTS, WINDOW_S = 20, 0.1  # an adaptive window: at least this many completions, at least this long
BACKOFF = 0.9  # the adaptive limit after a window over target: this share of what it was
MIN_LIMIT, MAX_LIMIT = 2, 1000  # the adaptive limit's bounds: two overlap one request's database wait with another's work
ESTIMATE_MARGIN = 2.0  # a request waits only if it expects to wait at most 1 / this of its budget ...
PATIENCE = 2.0  # ... and is refused if it still waits when this many budgets have passed (the estimate was wrong)


class Overloaded(Exception):
    """A request refused by admission control, before any work on it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class AimdLimit:
    """The adaptive limit (see the module's docstring)."""

    def __init__(self, initial: int, target_s: float, clock: Callable[[], float]) -> None:
        self.value = initial
        self.target_s = target_s
        self._clock = clock
        self._window_start = clock()
        self._count = 0
        self._total_s = 0.0
        self._reached = False

    def observe(self, in_progress_s: float, reached: bool) -> None:
        """One completion: its time in progress; `reached`: the limit was in use when it ended."""
        self._count += 1
        self._total_s += in_progress_s
        self._reached |= reached
        now = self._clock()
        if self._count < WINDOW_REQUESTS or now - self._window_start < WINDOW_S:
            return
        if self._total_s / self._count > self.target_s and self._reached:  # slow, and the limit had a part in it
            self.value = max(MIN_LIMIT, math.floor(self.value * BACKOFF))
        elif self._reached:
            self.value = min(MAX_LIMIT, self.value + 1)
        self._window_start, self._count, self._total_s, self._reached = now, 0, 0.0, False


class Gate:
    """One worker's admission (`fixed` or `adaptive`): `enter()` before a request's work, `leave()` after it."""

    def __init__(self, mode: str, limits: Limits, tally: Tally, clock: Callable[[], float] = time.perf_counter) -> None:
        if mode not in ADMISSIONS or mode == "none":
            raise ValueError(f"admission must be fixed or adaptive for a gate; got {mode!r}")
        self.mode = mode
        self.budget_s = limits.admission_wait_ms / 1000
        self.queue_max = limits.admission_queue
        target_s = limits.admission_latency_ms / 1000
        self.adaptive = AimdLimit(limits.admission_limit, target_s, clock) if mode == "adaptive" else None
        self._fixed = limits.admission_limit
        self._clock = clock
        self._tally = tally
        self.in_progress = 0
        self.mean_s: float | None = None  # mean time in progress, once a request completed
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._show()

    @property
    def limit(self) -> int:
        return self.adaptive.value if self.adaptive is not None else self._fixed

    async def enter(self) -> float:
        """Wait for a place (FIFO) and take it: the seconds waited. Raises Overloaded at once when the
        queue is full or the expected wait is beyond the budget, or when the budget runs out waiting."""
        if self.in_progress < self.limit and not self._waiting:
            self.in_progress += 1
            self._admitted(0.0)
            return 0.0
        if len(self._waiting) >= self.queue_max:
            raise self._refuse(f"{len(self._waiting)} requests already wait for one of {self.limit} places")
        expected_s = (len(self._waiting) + 1) * (self.mean_s or 0.0) / self.limit
        if expected_s * ESTIMATE_MARGIN > self.budget_s:
            raise self._refuse(f"the expected wait ({expected_s * 1000:.0f} ms) is beyond {self.budget_s * 1000:g} ms")
        queued = self._clock()
        place: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(place)
        self._show()
        try:
            async with asyncio.timeout(self.budget_s * PATIENCE):
                await place
        except TimeoutError:
            self._withdraw(place)
            self._tally.add("shed_late", 1)
            raise self._refuse(f"no place within {self.budget_s * PATIENCE * 1000:g} ms") from None
        except BaseException:  # cancelled (the client went away)
            self._withdraw(place)
            raise
        waited = self._clock() - queued
        self._admitted(waited)
        return waited

    def leave(self, in_progress_s: float) -> None:
        """A request admitted by `enter` is done after `in_progress_s` of work: its place goes to the next."""
        reached = self.in_progress >= self.limit
        self.in_progress -= 1
        self.mean_s = in_progress_s if self.mean_s is None else self.mean_s + EWMA_WEIGHT * (in_progress_s - self.mean_s)
        if self.adaptive is not None:
            self.adaptive.observe(in_progress_s, reached)
        self._hand_over()

    def _admitted(self, waited_s: float) -> None:
        self._tally.add("admitted", 1)
        self._tally.add("queue_ms", waited_s * 1000)
        self._show()

    def _hand_over(self) -> None:
        """Free places to the longest waiting, in order (a place is theirs from here: `in_progress`)."""
        while self._waiting and self.in_progress < self.limit:
            place = self._waiting.popleft()
            if not place.done():
                place.set_result(None)
                self.in_progress += 1
        self._show()

    def _withdraw(self, place: asyncio.Future[None]) -> None:
        """A waiter gives up: out of the queue, or, if a place was handed to it meanwhile, the place to the next."""
        if place.done() and not place.cancelled():
            self.in_progress -= 1
            self._hand_over()
        elif place in self._waiting:
            self._waiting.remove(place)
        self._show()

    def _refuse(self, why: str) -> Overloaded:
        self._tally.add("shed", 1)
        return Overloaded(f"overloaded: {why}")

    def _show(self) -> None:
        self._tally.set("admission_limit", self.limit)
        self._tally.set("in_progress", self.in_progress)
        self._tally.set("waiting", len(self._waiting))


def open_gate(mode: str, limits: Limits, tally: Tally) -> Gate | None:
    """The worker's gate; None for `none` (requests go straight to their work)."""
    if mode not in ADMISSIONS:
        raise ValueError(f"admission must be one of {', '.join(ADMISSIONS)}; got {mode!r}")
    return None if mode == "none" else Gate(mode, limits, tally)
