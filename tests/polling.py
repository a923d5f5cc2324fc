"""Waiting in tests for what a server does on its own time (a worker replaced, a log line written)."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.05


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Return once `condition()` holds; AssertionError if it does not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_S)
    raise AssertionError(f"condition not met in {timeout_s:g} s")
