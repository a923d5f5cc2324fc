"""A minimal keep-alive HTTP/1.1 client for measuring one request at a time (no load generation)."""

from __future__ import annotations

import http.client
import time
from dataclasses import dataclass

from reclab.ports import HOST


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
