"""A machine speed index: how fast this machine runs a fixed piece of pure-Python work right now.

Recorded with every run, so that drift of the machine itself (shared or throttled virtual CPUs)
can be told apart from a change in the code under test.
"""

from __future__ import annotations

import time

LOOPS = 500_000  # about 20 ms
TRIES = 7  # the best try: other processes only ever slow a try down


def _work() -> int:
    total = 0
    for i in range(LOOPS):
        total += i % 7
    return total


def speed_index() -> float:
    """Loop iterations per microsecond, best of a few tries (higher is faster)."""
    best = float("inf")
    for _ in range(TRIES):
        started = time.perf_counter()
        _work()
        best = min(best, time.perf_counter() - started)
    return round(LOOPS / (best * 1e6), 3)
