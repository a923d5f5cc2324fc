"""The `strategy` switch: await independent calls one after another, or concurrently with gather."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Thunk = Callable[[], Awaitable[Any]]


async def run_all(strategy: str, calls: Sequence[Thunk]) -> list[Any]:
    """Run independent calls and return their results in order.

    `sequential` awaits each call before starting the next; `gather` starts them all at once, and
    when one fails the others are cancelled (none is left running), and its error is raised.
    """
    if strategy == "gather" and len(calls) > 1:
        try:
            async with asyncio.TaskGroup() as group:
                tasks: list[asyncio.Task[Any]] = [group.create_task(_awaited(call)) for call in calls]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]
    return [await call() for call in calls]


async def _awaited(call: Thunk) -> Any:
    return await call()
