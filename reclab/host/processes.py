"""Child processes the lab starts: each kept by PID in its own process group and always stopped.

`ProcessGroup` stops everything it started (or adopted) on exit, on error and on Ctrl-C (SIGINT),
SIGTERM or SIGHUP; a second signal while it stops does not interrupt the stopping. Every child also
gets a parent-death signal (SIGKILL), so that a lab killed with SIGKILL leaves nothing behind.
A `Forker` is a pre-imported parent (`servers.zygote`) that forks fresh servers on request;
what it forks is a `ForkedChild`, kept by PID and stopped by its process group like any other.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO, Protocol

import msgspec
import psutil

from servers.lifeline import die_with_parent

STOP_TIMEOUT_S = 5.0
FORK_TIMEOUT_S = 10.0
WRAPPED_FORK_TIMEOUT_S = 180.0  # a zygote under valgrind imports tens of times slower before its first fork


def _tail(path: Path | None, lines: int) -> str:
    if not path or not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(pid: int, signum: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
        if signum == signal.SIGTERM:
            os.killpg(pid, signal.SIGCONT)  # a stopped process (a fault being injected) must run to exit


class Stoppable(Protocol):
    name: str

    @property
    def pid(self) -> int: ...
    def alive(self) -> bool: ...
    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None: ...
    def log_tail(self, lines: int = 20) -> str: ...


class Child:
    """One started process, with its log file (and, for a `Forker`, pipes to talk to it)."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path | None, env: dict[str, str] | None = None, pipes: bool = False
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log: IO[bytes] | None = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else (self._log or subprocess.DEVNULL),
            stderr=self._log or subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: Ctrl-C in the terminal reaches only us
            preexec_fn=die_with_parent(os.getpid()),
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def exit_code(self) -> int | None:
        return self.popen.poll()

    def log_tail(self, lines: int = 20) -> str:
        return _tail(self.log_path, lines)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM its process group, then SIGKILL after the timeout; returns the exit code."""
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout_s)
        else:
            _signal_group(self.pid, signal.SIGKILL)  # leftovers of a dead leader's group, if any
        for stream in (self.popen.stdin, self.popen.stdout):
            if stream:
                with suppress(OSError):
                    stream.close()
        if self._log:
            self._log.close()
            self._log = None
        return self.popen.returncode


class ForkedChild:
    """A process forked by a `Forker`: not the lab's own child, so it is watched and stopped by PID
    (it leads a session of its own, so its process group is its PID)."""

    def __init__(self, name: str, pid: int, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._pid = pid
        self._process = psutil.Process(pid)

    @property
    def pid(self) -> int:
        return self._pid

    def alive(self) -> bool:
        try:
            return self._process.is_running() and self._process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def exit_code(self) -> int | None:
        return None  # its parent, the zygote, collects it

    def log_tail(self, lines: int = 20) -> str:
        return _tail(self.log_path, lines)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        if self.alive():
            _signal_group(self._pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
        _signal_group(self._pid, signal.SIGKILL)  # whatever is left of its group
        return None


class Forker:
    """A pre-imported parent that forks fresh children on request (see `servers.zygote`)."""

    def __init__(
        self, group: ProcessGroup, log_path: Path, module: str = "servers.zygote", wrapper: tuple[str, ...] = ()
    ) -> None:
        """`wrapper`: a command the zygote runs under (valgrind, which then follows every fork)."""
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        self.child = group.start("zygote", [*wrapper, *python_module(module)], log_path, env=env, pipes=True)
        self.fork_timeout_s = WRAPPED_FORK_TIMEOUT_S if wrapper else FORK_TIMEOUT_S

    def fork(self, name: str, module: str, args: list[str], log_path: Path) -> ForkedChild:
        popen = self.child.popen
        assert popen.stdin is not None and popen.stdout is not None
        try:
            popen.stdin.write(msgspec.json.encode({"module": module, "args": args, "log": str(log_path)}) + b"\n")
            popen.stdin.flush()
        except OSError as error:
            raise RuntimeError(f"the server zygote is gone ({error}):\n{self.child.log_tail()}") from None
        ready, _, _ = select.select([popen.stdout], [], [], self.fork_timeout_s)
        line = popen.stdout.readline() if ready else b""
        if not line:
            raise RuntimeError(f"the server zygote did not fork {module}:\n{self.child.log_tail()}")
        reply = msgspec.json.decode(line)
        if "pid" not in reply:
            raise RuntimeError(f"the server zygote refused: {reply.get('error')}")
        return ForkedChild(name, int(reply["pid"]), log_path)


class ProcessGroup:
    """Starts children (or adopts forked ones) and stops them all, newest first, when the group closes."""

    def __init__(self) -> None:
        self.children: list[Stoppable] = []

    def start(
        self, name: str, argv: list[str], log_path: Path | None = None, env: dict[str, str] | None = None, pipes: bool = False
    ) -> Child:
        child = Child(name, argv, log_path, env, pipes)
        self.children.append(child)
        return child

    def adopt(self, child: ForkedChild) -> ForkedChild:
        self.children.append(child)
        return child

    def stop(self, child: Stoppable) -> int | None:
        code = child.stop()
        if child in self.children:
            self.children.remove(child)
        return code

    def close(self) -> None:
        """Stop every child, newest first; one that fails to stop does not keep the others running."""
        errors = []
        while self.children:
            try:
                self.children.pop().stop()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt, SIGTERM and SIGHUP (the terminal closed) raise
    SystemExit, so `finally` blocks and context managers stop every child. Once stopping has begun,
    further signals are noted and ignored: a second Ctrl-C cannot cut the stopping short. SIGINT is
    set explicitly: a shell that starts the lab in the background without job control leaves it ignored."""
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            print(f"reclab: {signal.Signals(signum).name} again; still stopping every child process", file=sys.stderr)
            return
        stopping = True
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
