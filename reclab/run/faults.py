"""The faults of the fault matrix (`reclab.results.faults`), injected with real mechanisms for a fixed interval of a run's
open-loop window: the service process stopped and continued (SIGSTOP/SIGCONT), the stall, slow and
refuse modes of the delay proxy in front of it, and a graceful restart of the server's workers (SIGUSR2 to the
master of Sanic, Tornado or aiohttp; SIGHUP to uvicorn's or Granian's: `servers.core.variant.restart_signal`).

With an external MongoDB or Redis (no process of ours to stop), a stall is the proxy's stall mode.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from reclab.results.faults import SLOW_MS
from reclab.services.network import ProxyControl
from servers.core.variant import restart_signal
from workloads.spec import LoadModel, Phase

WINDOW_S, QUICK_WINDOW_S = 7.0, 5.5  # the faults phase: the fault, and time after it to see recovery
DRAIN_S = 3.0  # after the window, time for its last requests to be answered (well above the server's 1 s deadline)


def fault_load(load: LoadModel, quick: bool) -> LoadModel:
    """The spec's load with one measured phase, `faults`: open loop at the rate of the spec's first open
    phase (below every default variant's capacity), long enough to see the fault and the recovery."""
    rate = next((p.rate for p in load.phases if p.mode == "open"), Phase().rate)
    window = QUICK_WINDOW_S if quick else WINDOW_S
    phase = Phase("faults", "open", rate=rate, duration_s=window, quick_duration_s=window, drain_s=DRAIN_S)
    return replace(load, phases=(phase,))


@dataclass
class Injection:
    """How one fault begins and ends."""

    begin: Callable[[], None]
    end: Callable[[], None] = field(default=lambda: None)


def _signal(pid: int, signum: int) -> Callable[[], None]:
    return lambda: os.kill(pid, signum)


def injection(
    fault: str, server_pid: int, service_pids: dict[str, int], controls: dict[str, ProxyControl], stack: str = "sanic"
) -> Injection:
    """The mechanism of `fault` on this run's processes and proxies (`stack`: the server's framework@server)."""
    if fault == "reload":
        return Injection(_signal(server_pid, restart_signal(stack)))
    service = "mongo" if fault.startswith("db-") else "redis"
    if service not in controls:
        raise ValueError(f"fault {fault!r} needs a delay proxy in front of {service}")
    proxy = controls[service]
    mode = fault.split("-", 1)[1]
    process = service_pids.get("mongo" if service == "mongo" else "valkey")
    if mode == "stall" and process is not None:
        return Injection(_signal(process, signal.SIGSTOP), _signal(process, signal.SIGCONT))
    command = {"stall": "stall", "slow": f"slow {SLOW_MS:g}", "refuse": "refuse"}[mode]
    return Injection(lambda: proxy.set(command), lambda: proxy.set("pass"))


class FaultThread(threading.Thread):
    """Begins the fault at `start` and ends it at `end` (time.monotonic()), recording when it really
    did; `finish()` ends it if still on (also when the run fails) and raises what went wrong."""

    def __init__(self, injection: Injection, start: float, end: float) -> None:
        super().__init__(name="fault", daemon=True)
        self._injection = injection
        self._at = (start, end)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._on = False
        self.began: float | None = None
        self.ended: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self._cancel.wait(max(0.0, self._at[0] - time.monotonic())):
                return
            with self._lock:
                self._injection.begin()
                self._on, self.began = True, time.monotonic()
            self._cancel.wait(max(0.0, self._at[1] - time.monotonic()))
            self._stop_fault()
        except BaseException as error:  # raised again in finish()
            self.error = error

    def _stop_fault(self) -> None:
        with self._lock:
            if self._on:
                self._injection.end()
                self._on, self.ended = False, time.monotonic()

    def finish(self) -> None:
        self._cancel.set()
        self.join(timeout=10)
        self._stop_fault()
        if self.error is not None:
            raise RuntimeError(f"fault injection failed: {self.error}") from self.error
