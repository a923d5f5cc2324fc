"""One request at a time against a running server (no load generation): a minimal keep-alive HTTP/1.1
client, and a probe that repeats one request and reads its latency, Server-Timing and /metrics."""

from __future__ import annotations

import http.client
import statistics
import time
from dataclasses import dataclass

from reclab.host.ports import HOST
from reclab.run.metrics import MetricsDelta
from reclab.run.server import RunningServer


@dataclass(frozen=True)
class Timed:
    status: int
    body: bytes
    server_timing: dict[str, float]
    latency_ms: float


def parse_server_timing(header: str | None) -> dict[str, float]:
    """`db;dur=1.2, cache;dur=0.1` -> {"db": 1.2, "cache": 0.1}."""
    parts: dict[str, float] = {}
    for entry in (header or "").split(","):
        name, _, params = entry.strip().partition(";")
        if params.startswith("dur="):
            parts[name] = float(params[4:])
    return parts


class Client:
    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self._connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)

    def get(self, path: str) -> Timed:
        started = time.perf_counter()
        self._connection.request("GET", path)
        response = self._connection.getresponse()
        body = response.read()
        latency = (time.perf_counter() - started) * 1000
        return Timed(response.status, body, parse_server_timing(response.getheader("Server-Timing")), latency)

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class Probe:
    """Medians of one request repeated on one connection, and what /metrics counted for it."""

    path: str
    latency_ms: float
    timing_ms: dict[str, float]  # Server-Timing stages: db, cache, app, total
    metrics: MetricsDelta


def probe(server: RunningServer, path: str, requests: int) -> Probe:
    """Warm up, then send `path` `requests` times; any answer but 200 is an error."""
    client = Client(server.port)
    try:
        for _ in range(max(5, requests // 10)):  # warm-up: connections, caches
            client.get(path)
        before = server.get_json("/metrics")
        samples = [client.get(path) for _ in range(requests)]
        after = server.get_json("/metrics")
    finally:
        client.close()
    bad = [s.status for s in samples if s.status != 200]
    if bad:
        raise RuntimeError(f"{server.framework} {server.variant.label()} answered {bad[0]} on {path}")
    return Probe(
        path=path,
        latency_ms=statistics.median(s.latency_ms for s in samples),
        timing_ms={k: statistics.median(s.server_timing[k] for s in samples) for k in ("db", "cache", "app", "total")},
        metrics=MetricsDelta.between(before, after),
    )
