"""CPU cores for benchmark runs: pinning and CPU accounting.

The server under test gets a core of its own, everything else (database, cache, delay proxies, load
generator) shares the others. This keeps the scheduler from reshuffling a saturated machine
differently from run to run, and makes the server's core the resource being compared."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class CorePlan:
    server: list[int]
    others: list[int]

    def as_dict(self) -> dict[str, list[int]]:
        return {"server": self.server, "others": self.others}


def core_plan(enabled: bool) -> CorePlan | None:
    """Server on the first allowed core, the rest elsewhere; None if disabled or only one core."""
    allowed = sorted(os.sched_getaffinity(0))
    if not enabled or len(allowed) < 2:
        return None
    return CorePlan(server=allowed[:1], others=allowed[1:])


def pin(pids: list[int], cores: list[int]) -> None:
    """Pin every thread of each process (and of its children): psutil's cpu_affinity only moves
    the main thread, while drivers and servers already run helper threads. Threads started later
    inherit the mask of the thread that starts them."""
    for pid in pids:
        try:
            owners = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
            for owner in owners:
                for thread in owner.threads():
                    with contextlib.suppress(ProcessLookupError):
                        os.sched_setaffinity(thread.id, cores)
        except psutil.Error:
            pass


def cpu_seconds(pids: dict[str, int | list[int]]) -> dict[str, float]:
    """User + system CPU seconds so far of each named process (or group of processes)."""
    out = {}
    for name, pid_or_pids in pids.items():
        total = 0.0
        for pid in pid_or_pids if isinstance(pid_or_pids, list) else [pid_or_pids]:
            try:
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        out[name] = total
    return out
