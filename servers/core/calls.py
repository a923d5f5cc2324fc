"""The `strategy` switch: await independent calls one after another, or concurrently with gather."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Thunk = Callable[[], Awaitable[Any]]


async def run_all(strategy: str, calls: Sequence[Thunk]) -> list[Any]:
    """Run independent calls and return their results in order.

    `sequential` awaits each call before starting the next; `gather` starts them all at once.
    """
    if strategy == "gather" and len(calls) > 1:
        return list(await asyncio.gather(*(call() for call in calls)))
    return [await call() for call in calls]
