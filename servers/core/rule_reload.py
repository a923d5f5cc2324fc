"""Rules reloaded in place in a running worker: on SIGHUP, and when their file changes if the server
was started with `--watch-rules` (the file's size and modification time are looked at twice a
second). A reload reads and checks the whole file before the rules are swapped in, so a request
sees the old rules or the new, never a mix and never an error; a bad file is reported (stderr,
`rules_reload_failures` in /metrics) and the running rules stay. The rule version is in /health and
/metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from servers.core.api import RecommenderApi

WATCH_INTERVAL_S = 0.5


class RuleReloader:
    def __init__(self, api: RecommenderApi, interval_s: float = WATCH_INTERVAL_S, signals: bool = True) -> None:
        """`signals`: reload on SIGHUP (False where the server itself answers SIGHUP, as uvicorn and
        Granian do: a graceful restart of their workers, which read the rule file afresh)."""
        self.api = api
        self.interval_s = interval_s
        self.signals = signals
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()  # one reload at a time, in the order asked

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.signals:
            loop.add_signal_handler(signal.SIGHUP, self._spawn)
        if self.api.watch_rules:
            self._keep(loop.create_task(self._watch()))

    async def stop(self) -> None:
        if self.signals:
            with contextlib.suppress(RuntimeError):  # the loop may already be closing its handlers
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self) -> None:
        self._keep(asyncio.get_running_loop().create_task(self.reload()))

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> None:
        async with self._lock:
            said = await self.api.reload_rules()
        print(f"worker {os.getpid()}: {said}", file=sys.stderr, flush=True)

    async def _watch(self) -> None:
        seen = _stamp(Path(self.api.rules.source))
        while True:
            await asyncio.sleep(self.interval_s)
            now = _stamp(Path(self.api.rules.source))
            if now != seen and now is not None:
                seen = now
                await self.reload()


def _stamp(path: Path) -> tuple[int, int] | None:
    """The file's modification time and size, or None while it is missing (being replaced)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
