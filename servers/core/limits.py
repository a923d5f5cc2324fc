"""How long and how much the server gives any one request, connection or dependency: one settings
object, read by the core (deadlines, timeouts, fan-out) and by every framework adapter (connection
limits), so that every framework refuses the same things in the same way."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MAX_HEAD_BYTES = 16384  # Sanic cannot hold a request head to a larger limit


@dataclass(frozen=True)
class Limits:
    deadline_ms: int = 1000  # a request not answered within it gets 503
    db_timeout_ms: int = 800  # each database operation, pool wait included (PyMongo's timeoutMS)
    cache_timeout_ms: int = 100  # each Redis command, connect and pool wait included
    fanout: int = 16  # database calls one request may have in flight at once
    pool_size: int = 100  # database connections per server process
    ready_timeout_ms: int = 250  # /ready: how long a dependency may take to answer a ping
    retry_after_s: int = 1  # the Retry-After of a 503
    breaker_failures: int = 3  # consecutive cache failures that open the cache's circuit breaker
    breaker_reset_s: float = 2.0  # how long an open breaker skips the cache before probing it again
    header_timeout_s: float = 10.0  # a request (head and body) not complete within it of its first byte: 408, closed
    keepalive_s: float = 5.0  # an idle keep-alive connection is closed after it
    max_header_bytes: int = 8192  # request line plus headers: beyond it 431 (414 if the request line alone is)
    max_headers: int = 100  # header fields in a request head (or trailer fields): beyond it 431
    max_body_bytes: int = 65536  # request body: beyond it 413
    max_connections: int = 1000  # open connections per server process: beyond it 503, closed
    # Admission control (servers.core.admission; only with --admission fixed or adaptive):
    admission_limit: int = 4  # requests in progress per worker (adaptive: where the limit starts)
    admission_queue: int = 100  # requests waiting for a place per worker: beyond it 503 at once
    admission_wait_ms: int = 30  # a request's budget for waiting (3% of the default deadline): beyond it 503
    admission_latency_ms: int = 15  # adaptive: the mean time in progress the limit is held to

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"limit {name} must be positive, got {value!r}")
        if self.max_header_bytes > MAX_HEAD_BYTES or self.max_body_bytes < self.max_header_bytes:
            raise ValueError(
                f"max_header_bytes must be at most {MAX_HEAD_BYTES} (what every framework can hold to) and at most "
                f"max_body_bytes; got {self.max_header_bytes} and {self.max_body_bytes}"
            )
        if self.admission_wait_ms >= self.deadline_ms:
            raise ValueError(f"admission_wait_ms ({self.admission_wait_ms}) must be below deadline_ms ({self.deadline_ms})")
        if self.db_timeout_ms > self.deadline_ms:
            raise ValueError(f"db_timeout_ms ({self.db_timeout_ms}) must not exceed deadline_ms ({self.deadline_ms})")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
