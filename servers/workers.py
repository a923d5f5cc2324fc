"""A master process that owns the listening socket and runs N worker processes on it (one by default),
as production servers do (gunicorn, nginx): the master's PID stays the server's for as long as it
runs. The workers share the socket's accept queue; their counters are summed in shared memory
(`servers.core.tally`), so /metrics, whichever worker answers it, counts the whole server.

- SIGHUP: the rules reloaded in place; the master passes the signal to every worker, which reads the
  rule file again and swaps its rules in (`servers.core.rule_reload`; a bad file changes nothing).
- SIGUSR2: a graceful restart, one worker after another. The master forks a new worker on the same
  socket (it reads the rule file afresh); once the new worker is ready, the old one is told to hand
  over (SIGUSR1): it
  stops accepting (the new worker takes every new connection: they share one accept queue, so none
  is lost), answers each of its connections' next request with `Connection: close`, and exits when
  its last connection is gone. A new worker that fails to start leaves the old one serving.
- SIGTERM or SIGINT: the workers stop (idle connections closed, busy ones finish), then the master.
- A worker that dies on its own takes the master with it (exit code 1): a benchmark must see it.

The master creates no event loop and no thread, so each worker is forked clean. The framework
adapters provide the worker (`serve(sock, ready)`): serve on `sock`, call `ready()` once serving,
and on a `StopSignal` stop accepting, set the API draining and `drain`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from servers.core.api import RecommenderApi
from servers.core.limits import Limits
from servers.core.rule_reload import RuleReloader
from servers.core.tally import share
from servers.lifeline import run_forked

Worker = Callable[[socket.socket, Callable[[], None]], None]  # serve(sock, ready)
READY_TIMEOUT_S = 60.0
HANDOFF_SIGNAL = signal.SIGUSR1  # master to old worker in a graceful restart
RESTART_SIGNAL = signal.SIGUSR2  # to the master: restart the workers gracefully
RELOAD_SIGNAL = signal.SIGHUP  # to the master (passed on to the workers) or a worker: reload the rules in place
BACKLOG = 1024


def listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.setblocking(False)  # workers accept in a loop until nothing is left (and share the queue)
    sock.set_inheritable(True)
    return sock


class Master:
    def __init__(self, sock: socket.socket, worker: Worker, workers: int = 1) -> None:
        self.sock = sock
        self.worker = worker
        self.count = workers
        self.tally = share(2 * workers)  # a row per worker, and a free one for each replacement
        self.workers: dict[int, int] = {}  # tally row -> worker pid
        self.restarts = 0

    def fork_worker(self, row: int) -> tuple[int, int]:
        """A new worker on the socket, adding to tally row `row`: (pid, the read end of the pipe it
        reports ready on)."""
        read_end, write_end = os.pipe()
        master = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)

            def serve() -> None:
                for signum in (RESTART_SIGNAL, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, HANDOFF_SIGNAL):
                    signal.signal(signum, signal.SIG_DFL)
                signal.signal(RELOAD_SIGNAL, signal.SIG_IGN)  # until its event loop handles it
                self.tally.row = row
                self.worker(self.sock, lambda: _report_ready(write_end))

            run_forked(master, serve)
        os.close(write_end)
        self.tally.add("workers_started", 1)
        return pid, read_end

    def wait_ready(self, pid: int, ready_fd: int) -> bool:
        """True once the worker reports ready; False if it exits or takes too long (it is then stopped)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if _exited(pid):
                    return False
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    os.set_blocking(ready_fd, False)
                    if os.read(ready_fd, 1):
                        return True
                time.sleep(0.01)
            _stop(pid)
            return False
        finally:
            os.close(ready_fd)

    def start(self) -> bool:
        for row in range(self.count):
            pid, ready = self.fork_worker(row)
            if not self.wait_ready(pid, ready):
                self.stop()
                return False
            self.workers[row] = pid
            self.tally.set("workers_serving", len(self.workers))
        return True

    def restart(self) -> None:
        """Each worker in turn: a new one; once it is ready, the old one drains and exits."""
        for row, old in list(self.workers.items()):
            free = next(r for r in range(self.tally.rows) if r not in self.workers)
            pid, ready = self.fork_worker(free)
            if not self.wait_ready(pid, ready):
                _say(f"the new worker did not start; worker {old} goes on serving")
                return
            del self.workers[row]
            self.workers[free] = pid
            self.restarts += 1
            _say(f"worker {pid} serving; worker {old} draining")
            _stop(old, HANDOFF_SIGNAL)

    def reload(self) -> None:
        """Every worker reloads its rules in place."""
        for pid in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, RELOAD_SIGNAL)

    def stop(self) -> None:
        """Every worker at once: each stops accepting and finishes its busy connections."""
        for pid in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in self.workers.values():
            _stop(pid)
        self.workers.clear()
        self.tally.set("workers_serving", 0)

    def exited(self) -> int | None:
        """A worker that has exited on its own, if any."""
        return next((pid for pid in self.workers.values() if _exited(pid)), None)


def _say(message: str) -> None:
    print(f"master {os.getpid()}: {message}", file=sys.stderr, flush=True)


def _report_ready(fd: int) -> None:
    os.write(fd, b"r")
    os.close(fd)


def _exited(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _stop(pid: int, signum: int = signal.SIGTERM, timeout_s: float = 60.0) -> None:
    """Signal the worker (SIGTERM: stop; HANDOFF_SIGNAL: drain for a restart), reap it; SIGKILL if it
    outstays `timeout_s`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    deadline = time.monotonic() + timeout_s
    while not _exited(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def run_master(host: str, port: int, worker: Worker, workers: int = 1) -> int:
    """Serve with `workers` workers until SIGTERM/SIGINT; SIGHUP reloads their rules, SIGUSR2 restarts
    them gracefully."""
    master = Master(listen(host, port), worker, workers)
    pending: list[int] = []  # signals received, handled in the loop below (not inside the handler)
    for signum in (RELOAD_SIGNAL, RESTART_SIGNAL, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: pending.append(signum))
    if not master.start():
        _say("a worker did not start")
        return 1
    while True:
        if pending:
            asked = pending.pop(0)
            if asked == RELOAD_SIGNAL:
                master.reload()
                continue
            if asked == RESTART_SIGNAL:
                master.restart()
                continue
            master.stop()
            return 0
        if (gone := master.exited()) is not None:
            _say(f"worker {gone} exited")
            master.stop()
            return 1
        time.sleep(0.05)


class StopSignal:
    """In a worker: SIGTERM or SIGINT ask it to stop (idle connections closed at once, busy ones
    finish); SIGUSR1, sent by the master in a graceful restart, asks it to hand over (every
    connection is served until its next answer, which says `Connection: close`)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self._handoff: asyncio.Future[bool] = loop.create_future()
        for signum, handoff in ((signal.SIGINT, False), (signal.SIGTERM, False), (HANDOFF_SIGNAL, True)):
            loop.add_signal_handler(signum, self._set, handoff)

    def _set(self, handoff: bool) -> None:
        if not self._handoff.done():
            self._handoff.set_result(handoff)

    async def wait(self) -> bool:
        """Until asked; True for a handover, False for a stop."""
        return await self._handoff


async def drain(handoff: bool, limits: Limits, open_connections: Callable[[], int], close_idle: Callable[[], None]) -> None:
    """After the worker stopped accepting (and set its API draining): wait for its connections to go.
    A handover waits for each one's next answer (or its keep-alive timeout); a stop closes the idle
    ones now and gives the busy ones their deadline."""
    if not handoff:
        close_idle()
    grace_s = max(limits.keepalive_s, limits.deadline_ms / 1000) + 1.0 if handoff else limits.deadline_ms / 1000 + 1.0
    deadline = time.monotonic() + grace_s
    while open_connections() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def serve_until_stopped(
    api: RecommenderApi,
    limits: Limits,
    ready: Callable[[], None],
    stop_accepting: Callable[[], None],
    open_connections: Callable[[], int],
    close_idle: Callable[[], None],
) -> None:
    """A worker's life once it serves: report ready, wait for a stop or a hand-over, then stop accepting,
    set the API draining and `drain`. The adapter closes what is left and its core afterwards."""
    stop = StopSignal()  # before ready(): the master may signal as soon as it hears of it
    reloader = RuleReloader(api)
    reloader.start()
    ready()
    handoff = await stop.wait()
    await reloader.stop()
    stop_accepting()  # no more accepting: the master's other worker takes new connections
    api.draining = True
    await drain(handoff, limits, open_connections, close_idle)
