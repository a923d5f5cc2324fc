"""A shared cache that may fail without failing a request: every call bounded in time, a failure
counted and answered as a miss (the database answers instead), and a circuit breaker that stops
calling a dead cache and probes it again later."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from servers.core.stats import current

if TYPE_CHECKING:
    from servers.core.cache import Cache

CACHE_ERRORS = (RedisError, OSError, TimeoutError)


class Breaker:
    """Closed: calls go through. After `failures` consecutive failures, open: calls are skipped for
    `reset_s`. Then one call at a time goes through as a probe; its success closes the breaker."""

    def __init__(self, failures: int, reset_s: float) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._failures = 0
        self._open_until: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._open_until is None:
            return "closed"
        return "open" if time.monotonic() < self._open_until or self._probing else "half-open"

    def allow(self) -> bool:
        if self._open_until is None:
            return True
        if self._probing or time.monotonic() < self._open_until:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        self._failures = 0
        self._open_until = None
        self._probing = False

    def failed(self) -> None:
        self._failures += 1
        self._probing = False
        if self._failures >= self._threshold:
            self._open_until = time.monotonic() + self._reset_s


class GuardedCache:
    """Wraps a shared cache (Redis): errors and timeouts become misses, counted in the request's stats."""

    def __init__(self, inner: Cache, timeout_s: float, breaker: Breaker) -> None:
        self._inner = inner
        self._timeout_s = timeout_s
        self.breaker = breaker

    async def get_many(self, keys: list[str]) -> dict[str, Any]:
        if not keys or not self._admit():
            return {}
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await self._inner.get_many(keys)
        except CACHE_ERRORS:
            self._failed()
            return {}
        self.breaker.succeeded()
        return found

    async def set_many(self, values: dict[str, Any]) -> None:
        if not values or not self._admit():
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._inner.set_many(values)
        except CACHE_ERRORS:
            self._failed()
            return
        self.breaker.succeeded()

    async def ping(self) -> None:
        async with asyncio.timeout(self._timeout_s):
            await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()

    def _admit(self) -> bool:
        if self.breaker.allow():
            return True
        current().cache_skipped += 1
        return False

    def _failed(self) -> None:
        current().cache_errors += 1
        self.breaker.failed()
