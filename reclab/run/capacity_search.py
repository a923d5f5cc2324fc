"""The search behind `reclab capacity`, apart from any server: the latency objective a step is judged
on, and which rate to try next.

Grow the rate geometrically (x2) from a start until a step breaks the objective, then bisect (on a
log scale) between the highest passing and the lowest failing rate until they are within 5%; then
confirm: the highest passing rate again (it must pass) and 1.25 x it (it must fail). A confirmation
that disagrees sends the search back: a failing confirmation lowers the bracket, a passing step above
raises it. The search ends after `max_steps` steps whatever happened, unconfirmed if need be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from reclab.results.record import PhaseResult

GROWTH = 2.0
PRECISION = 1.05  # the bracket is narrow enough when failing / passing is at most this
ABOVE = 1.25  # the confirmation above the capacity
FLOOR_RPS = 1.0  # below this the search gives up: nothing passes


@dataclass(frozen=True)
class Objective:
    """A step passes when its p99 (unsent and unanswered arrivals count, from their due time) is within
    the objective and its errors (refusals, failures, unanswered arrivals, and arrivals left unsent
    because the outstanding-requests cap held them back) within the error rate. An arrival left
    unsent while nothing was held back is the generator's lag at the window's end (its due moment
    came as the window closed), not the server's doing: it is not an error here."""

    p99_ms: float = 100.0
    max_error_rate: float = 0.001

    def broken(self, phase: PhaseResult) -> list[str]:
        """What the step broke; empty when it met the objective."""
        out = []
        expected = phase.arrivals.expected if phase.arrivals else phase.ok + phase.error_count
        p99 = phase.latency_us.p99 / 1000 if phase.latency_us else math.inf
        if p99 > self.p99_ms:
            out.append(f"p99 {p99:.1f} ms > {self.p99_ms:g} ms")
        errors = dict(phase.errors)
        if not phase.held_back:
            errors.pop("unsent", None)
        rate = sum(errors.values()) / max(1, expected)
        if rate > self.max_error_rate:
            kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(errors.items(), key=lambda kv: -kv[1])[:3])
            out.append(f"errors {rate:.2%} > {self.max_error_rate:.2%} ({kinds})")
        return out


@dataclass
class Search:
    """One variant's search (see the module's docstring)."""

    start: float
    max_steps: int = 20
    passes: list[float] = field(default_factory=list)
    fails: list[float] = field(default_factory=list)
    confirmed_pass: float | None = None  # the highest passing rate, passed again as a confirmation
    confirmed_fail: float | None = None  # 1.25 x it, failed as a confirmation
    steps: int = 0

    @property
    def low(self) -> float | None:
        """The highest passing rate below every failing one."""
        below = [r for r in self.passes if not self.fails or r < min(self.fails)]
        return max(below) if below else None

    @property
    def high(self) -> float | None:
        return min(self.fails) if self.fails else None

    def next_step(self) -> tuple[float, str] | None:
        """(rate, stage) of the next step, or None when the search is over."""
        if self.steps >= self.max_steps:
            return None
        low, high = self.low, self.high
        if high is None:
            return (self.start if low is None else low * GROWTH), "grow"
        if low is None:
            rate = high / GROWTH
            return (rate, "grow") if rate >= FLOOR_RPS else None
        if high / low > PRECISION:
            return math.sqrt(low * high), "bisect"
        if self.confirmed_pass != low:
            return low, "confirm"
        if self.confirmed_fail != low * ABOVE:
            return low * ABOVE, "above"
        return None

    def record(self, rate: float, stage: str, passed: bool) -> None:
        self.steps += 1
        if stage == "confirm":
            if passed:
                self.confirmed_pass = rate
            else:  # it does not hold: the bracket comes down
                self.passes = [r for r in self.passes if r < rate]
                self.fails.append(rate)
            return
        if stage == "above":
            if passed:  # the capacity was higher: search above it
                self.passes.append(rate)
                self.fails = [r for r in self.fails if r > rate]
            else:
                self.confirmed_fail = rate
                self.fails.append(rate)
            return
        (self.passes if passed else self.fails).append(rate)

    @property
    def capacity(self) -> float | None:
        return self.low

    @property
    def confirmed(self) -> bool:
        low = self.low
        return low is not None and self.confirmed_pass == low and self.confirmed_fail == low * ABOVE
