"""Readiness: is every dependency the server needs answering a ping within a short timeout?"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

Ping = Callable[[], Awaitable[object]]


async def _answers(ping: Ping, timeout_s: float) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            await ping()
    except Exception:
        return False
    return True


async def down_dependencies(pings: Mapping[str, Ping], timeout_s: float) -> list[str]:
    """The names of the dependencies that did not answer within `timeout_s`, pinged concurrently."""
    names = list(pings)
    answered = await asyncio.gather(*(_answers(pings[name], timeout_s) for name in names))
    return [name for name, ok in zip(names, answered, strict=True) if not ok]
