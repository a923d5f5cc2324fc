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
        return await _gather(calls)
    return [await call() for call in calls]


async def _gather(calls: Sequence[Thunk]) -> list[Any]:
    """Each call starts as an eager task: it runs at once, up to its first real wait, so a call that
    is answered from memory (a cache hit) is done without a trip through the event loop; calls that
    wait (the database) are all in flight together, as with `asyncio.gather`. Semantics as a
    `TaskGroup`'s: the first failure cancels the rest, and a cancelled caller cancels them all."""
    loop = asyncio.get_running_loop()
    tasks = [asyncio.Task(_coroutine(call), loop=loop, eager_start=True) for call in calls]
    try:
        if not all(task.done() for task in tasks):  # returns at once if a call has already failed
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _cancel(tasks)
        raise
    failed = next((task for task in tasks if task.done() and not task.cancelled() and task.exception()), None)
    if failed is not None:
        await _cancel(tasks)
        raise failed.exception()  # type: ignore[misc]
    return [task.result() for task in tasks]


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks still running and wait until they have stopped; every other failure is
    retrieved here (only the first is raised)."""
    running = [task for task in tasks if not task.done()]
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    for task in tasks:
        if not task.cancelled():
            task.exception()


async def _coroutine(call: Thunk) -> Any:
    return await call()
