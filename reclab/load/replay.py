"""A fixed slice of the request stream sent in order over a few keep-alive connections, as fast as
the server answers (no timing, no histogram): the load of an instruction window, where what counts
is which requests the server serves, not when.

A read is a GET of its path, a write a POST of its event to /events (`workloads.writes`). Each
connection takes the next entry of the slice once its previous answer is in, so with one connection
the server sees exactly the stream's order.
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


class _Sender:
    """One keep-alive connection sending entries until the shared slice runs out."""

    def __init__(self, port: int, entries: Iterator[str], lock: threading.Lock, timeout_s: float) -> None:
        self.port, self.entries, self.lock, self.timeout_s = port, entries, lock, timeout_s
        self.answered = 0
        self.kinds: Counter[str] = Counter()
        self.first_error = ""

    def run(self) -> None:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout_s)
        try:
            while (entry := self._next()) is not None:
                try:
                    status = _send(connection, entry)
                except (OSError, http.client.HTTPException) as error:
                    self._error(type(error).__name__, f"{entry[:80]}: {type(error).__name__}: {error}")
                    connection.close()  # the next request opens a new connection
                    continue
                self.answered += 1
                if status >= 400:
                    self._error(f"HTTP {status}", f"{entry[:80]}: HTTP {status}")
        finally:
            connection.close()

    def _next(self) -> str | None:
        with self.lock:
            return next(self.entries, None)

    def _error(self, kind: str, what: str) -> None:
        self.kinds[kind] += 1
        self.first_error = self.first_error or what


def _send(connection: http.client.HTTPConnection, entry: str) -> int:
    if is_write(entry):
        connection.request("POST", WRITE_ROUTE, body=write_body(entry), headers={"Content-Type": CONTENT_TYPE})
    else:
        connection.request("GET", entry)
    response = connection.getresponse()
    response.read()
    return response.status


def replay(port: int, entries: list[str], connections: int = 1, timeout_s: float = ANSWER_TIMEOUT_S) -> Replayed:
    """Send `entries` in order to the server on 127.0.0.1:`port` over `connections` connections."""
    if connections < 1:
        raise ValueError(f"connections: {connections}, must be at least 1")
    shared, lock = iter(entries), threading.Lock()
    senders = [_Sender(port, shared, lock, timeout_s) for _ in range(connections)]
    started = time.monotonic()
    if connections == 1:
        senders[0].run()
    else:
        threads = [threading.Thread(target=s.run, name=f"replay-{i}", daemon=True) for i, s in enumerate(senders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    kinds = sum((s.kinds for s in senders), Counter[str]())
    return Replayed(
        answered=sum(s.answered for s in senders),
        errors=kinds.total(),
        seconds=time.monotonic() - started,
        first_error=next((s.first_error for s in senders if s.first_error), ""),
        by_kind=dict(sorted(kinds.items())),
    )
