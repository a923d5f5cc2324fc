"""A fixed slice of the request stream sent in order over a few keep-alive connections, as fast as
the server answers (no timing, no histogram): the load of an instruction window, where what counts
is which requests the server serves, not when.

A read is a GET of its path, a write a POST of its event to /events (`workloads.writes`). Each
connection takes the next entry of the slice once its previous answer is in, so with one connection
the server sees exactly the stream's order. The connections outlive one slice (`Replayer`): the warm-up
and the window that follows it go over the same connections, so a server with several worker
processes serves the window on the worker(s) its warm-up warmed (each worker has caches of its own).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from reclab.host.ports import HOST
from workloads.writes import CONTENT_TYPE, WRITE_ROUTE, is_write, write_body

ANSWER_TIMEOUT_S = 120.0  # a request under valgrind takes tens of times longer than natively


@dataclass(frozen=True)
class Replayed:
    """What a slice of the stream got: answers (any HTTP status), errors among them (status 400 and
    above, or no answer), and the wall time it took."""

    answered: int
    errors: int
    seconds: float
    first_error: str = ""
    by_kind: dict[str, int] = field(default_factory=dict)  # errors by kind: `HTTP 500`, `TimeoutError`, ...

    @property
    def ok(self) -> int:
        """Answers with a status below 400."""
        return self.answered - sum(n for kind, n in self.by_kind.items() if kind.startswith("HTTP "))


def stream_slice(entries: list[str], start: int, count: int) -> list[str]:
    """`count` entries of the stream from position `start`, starting the stream again at its end (as
    the generator does for a run that needs more)."""
    if not entries:
        raise ValueError("the request stream is empty")
    return [entries[i % len(entries)] for i in range(start, start + count)]


class _Connection:
    """One keep-alive connection: it sends entries taken from a shared slice until the slice runs out,
    and stays open for the next slice (a failed request closes it; the next opens a new one)."""

    def __init__(self, port: int, timeout_s: float) -> None:
        self.http = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
        self.answered = 0
        self.kinds: Counter[str] = Counter()
        self.first_error = ""

    def send_all(self, entries: Iterator[str], lock: threading.Lock) -> None:
        while (entry := _next(entries, lock)) is not None:
            try:
                status = _send(self.http, entry)
            except (OSError, http.client.HTTPException) as error:
                self._error(type(error).__name__, f"{entry[:80]}: {type(error).__name__}: {error}")
                self.http.close()
                continue
            self.answered += 1
            if status >= 400:
                self._error(f"HTTP {status}", f"{entry[:80]}: HTTP {status}")

    def _error(self, kind: str, what: str) -> None:
        self.kinds[kind] += 1
        self.first_error = self.first_error or what

    def reset(self) -> None:
        """Counts back to zero, for the next slice."""
        self.answered, self.kinds, self.first_error = 0, Counter(), ""


def _next(entries: Iterator[str], lock: threading.Lock) -> str | None:
    with lock:
        return next(entries, None)


def _send(connection: http.client.HTTPConnection, entry: str) -> int:
    if is_write(entry):
        connection.request("POST", WRITE_ROUTE, body=write_body(entry), headers={"Content-Type": CONTENT_TYPE})
    else:
        connection.request("GET", entry)
    response = connection.getresponse()
    response.read()
    return response.status


class Replayer:
    """`connections` keep-alive connections to the server on 127.0.0.1:`port`, for one slice of the
    stream after another; closed on leaving its `with` block."""

    def __init__(self, port: int, connections: int = 1, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        if connections < 1:
            raise ValueError(f"connections: {connections}, must be at least 1")
        self.connections = [_Connection(port, timeout_s) for _ in range(connections)]

    def send(self, entries: list[str]) -> Replayed:
        """Send `entries` in order over the connections; what they got."""
        shared, lock = iter(entries), threading.Lock()
        for connection in self.connections:
            connection.reset()
        started = time.monotonic()
        if len(self.connections) == 1:
            self.connections[0].send_all(shared, lock)
        else:
            threads = [threading.Thread(target=c.send_all, args=(shared, lock), name=f"replay-{i}", daemon=True)
                       for i, c in enumerate(self.connections)]  # fmt: skip
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        kinds = sum((c.kinds for c in self.connections), Counter[str]())
        return Replayed(
            answered=sum(c.answered for c in self.connections),
            errors=kinds.total(),
            seconds=time.monotonic() - started,
            first_error=next((c.first_error for c in self.connections if c.first_error), ""),
            by_kind=dict(sorted(kinds.items())),
        )

    def close(self) -> None:
        for connection in self.connections:
            connection.http.close()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def replay(port: int, entries: list[str], connections: int = 1, timeout_s: float = ANSWER_TIMEOUT_S) -> Replayed:
    """Send `entries` in order to the server on 127.0.0.1:`port` over `connections` new connections."""
    with Replayer(port, connections, timeout_s) as replayer:
        return replayer.send(entries)
