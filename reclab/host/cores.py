"""CPU cores for benchmark runs: pinning, and accounting of each process's and each core's CPU time.

The server under test gets a core of its own, everything else (database, cache, delay proxies, load
generator) shares the others. This keeps the scheduler from reshuffling a saturated machine
differently from run to run, and makes the server's core the resource being compared."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class CorePlan:
    server: list[int]
    others: list[int]

    def as_dict(self) -> dict[str, list[int]]:
        return {"server": self.server, "others": self.others}


def core_plan(enabled: bool, server_cores: int = 1) -> CorePlan | None:
    """The server on the first `server_cores` allowed cores, the rest elsewhere; None if disabled or
    only one core. Raises ValueError when the server would leave no core for the rest."""
    allowed = sorted(os.sched_getaffinity(0))
    if not enabled or len(allowed) < 2:
        return None
    if not 1 <= server_cores < len(allowed):
        raise ValueError(
            f"{server_cores} server core(s) of the {len(allowed)} this process may use would leave none for the database, "
            "cache and load generator"
        )
    return CorePlan(server=allowed[:server_cores], others=allowed[server_cores:])


def spread(master: int, workers: list[int], cores: list[int]) -> dict[int, list[int]]:
    """Where each process of a server goes: its master (which only accepts and restarts workers) on
    every server core, worker i on core i mod len(cores); workers restarted later inherit the
    master's cores."""
    placement = {master: cores}
    placement |= {pid: [cores[i % len(cores)]] for i, pid in enumerate(sorted(workers))}
    return placement


def pin_server(master: int, cores: list[int]) -> None:
    """Pin a server's master and its workers over the server's cores (see `spread`)."""
    try:
        workers = [child.pid for child in psutil.Process(master).children()]
    except psutil.Error:
        workers = []
    for pid, where in spread(master, workers, cores).items():
        pin([pid], where)


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


def process_cpu_seconds(pid: int) -> float:
    """CPU time so far of a process (all its live threads), from the scheduler's nanosecond counters
    (/proc/PID/task/*/schedstat); psutil's tick-based times where those are missing."""
    total_ns, found = 0, False
    try:
        for task in os.scandir(f"/proc/{pid}/task"):
            try:
                with open(f"{task.path}/schedstat") as handle:
                    total_ns += int(handle.read().split()[0])
                    found = True
            except (OSError, ValueError, IndexError):
                continue
    except OSError:
        pass
    if found:
        return total_ns / 1e9
    try:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except psutil.Error:
        return 0.0


def core_jiffies() -> dict[int, tuple[int, int, int]]:
    """Per core, from /proc/stat: (busy, steal, total) clock ticks so far."""
    out = {}
    with open("/proc/stat") as handle:
        for line in handle:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *fields = line.split()
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            idle = values[3] + values[4]
            out[int(name[3:])] = (sum(values) - idle, values[7], sum(values))
    return out


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time so far of named processes, and of each core, at one moment."""

    at: float  # time.monotonic()
    processes: dict[str, float]
    cores: dict[int, tuple[int, int, int]]

    @classmethod
    def take(cls, pids: dict[str, list[int]]) -> CpuSnapshot:
        processes = {name: sum(process_cpu_seconds(pid) for pid in group) for name, group in pids.items()}
        return cls(time.monotonic(), processes, core_jiffies())


@dataclass(frozen=True)
class CpuUse:
    """What the CPUs did between two snapshots."""

    seconds: float
    process_seconds: dict[str, float]  # CPU seconds of each named process (or group)
    core_busy: dict[int, float]  # share of the interval each core was busy (steal included)
    core_steal: dict[int, float]  # share of the interval the hypervisor ran something else on it

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
        busy, steal = {}, {}
        for core, (b1, s1, t1) in after.cores.items():
            b0, s0, t0 = before.cores.get(core, (b1, s1, t1))
            total = max(1, t1 - t0)
            busy[core], steal[core] = (b1 - b0) / total, (s1 - s0) / total
        processes = {name: max(0.0, after.processes[name] - before.processes.get(name, 0.0)) for name in after.processes}
        return cls(after.at - before.at, processes, busy, steal)

    def share(self, name: str) -> float:
        """CPU seconds of a process per second of the interval (1.0: one core, all the time)."""
        return self.process_seconds.get(name, 0.0) / self.seconds if self.seconds > 0 else 0.0
