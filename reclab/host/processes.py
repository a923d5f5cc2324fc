"""Child processes the lab starts: each kept by PID in its own process group and always stopped.

`ProcessGroup` stops everything it started on exit, on error and on Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO

STOP_TIMEOUT_S = 5.0


class Child:
    """One started process, with its log file."""

    def __init__(self, name: str, argv: list[str], log_path: Path | None, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log: IO[bytes] | None = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._log else subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: Ctrl-C in the terminal reaches only us
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM its process group, then SIGKILL after the timeout; returns the exit code."""
        if self.alive():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=timeout_s)
        else:
            self._signal_group(signal.SIGKILL)  # leftovers of a dead leader's group, if any
        if self._log:
            self._log.close()
            self._log = None
        return self.popen.returncode

    def _signal_group(self, signum: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)


class ProcessGroup:
    """Starts children and stops them all (newest first) when the group closes."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, argv: list[str], log_path: Path | None = None, env: dict[str, str] | None = None) -> Child:
        child = Child(name, argv, log_path, env)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> int | None:
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


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Ctrl-C (SIGINT) raises KeyboardInterrupt and SIGTERM raises SystemExit, so `finally` blocks and
    context managers stop every child. SIGINT is set explicitly: a shell that starts the lab in the
    background without job control leaves it ignored."""

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm)}  # fmt: skip
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
