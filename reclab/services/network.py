"""Puts a delay proxy in front of MongoDB and Redis for one run, and measures the delay it really adds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import redis
from pymongo import MongoClient

from reclab.host.ports import HOST, free_port, wait_for_port
from reclab.host.processes import Child, ProcessGroup, python_module
from reclab.services.start import Endpoints

PROBES = 200


@dataclass
class DelayedEndpoints:
    endpoints: Endpoints  # what the server connects to (through the proxies)
    proxies: list[Child]
    added_ms: dict[str, float]  # measured median added round-trip time per service


def _port_of(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise ValueError(f"delay emulation needs an explicit port in {url}")
    return port


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{HOST}:{port}").geturl()


def _start_proxy(group: ProcessGroup, target_port: int, delay_ms: float, log_dir: Path, name: str) -> tuple[Child, int]:
    port = free_port()
    argv = python_module(
        "reclab.services.delay_proxy", "--listen-port", str(port), "--target-port", str(target_port), "--delay-ms", str(delay_ms)
    )
    child = group.start(f"delay-{name}", argv, log_dir / f"delay-{name}.log")
    wait_for_port(port, 10.0, child.alive, f"delay proxy for {name}")
    return child, port


def median_round_trip_ms(service: str, url: str, probes: int = PROBES) -> float:
    """Median time of a trivial command (MongoDB ping, Redis PING) over one connection."""
    ping: Callable[[], object]
    close: Callable[[], object]
    if service == "mongo":
        mongo: MongoClient = MongoClient(url, maxPoolSize=1, serverSelectionTimeoutMS=3000)
        ping, close = (lambda: mongo.admin.command("ping")), mongo.close
    else:
        cache = redis.Redis.from_url(url)
        ping, close = cache.ping, cache.close
    try:
        ping()  # connect first
        samples = []
        for _ in range(probes):
            started = time.perf_counter()
            ping()
            samples.append(time.perf_counter() - started)
    finally:
        close()
    return statistics.median(samples) * 1000


def delayed(group: ProcessGroup, endpoints: Endpoints, delay_ms: float, log_dir: Path) -> DelayedEndpoints:
    """Proxies with `delay_ms` in front of MongoDB (and Redis if any), with their measured added delay."""
    mongo_proxy, mongo_port = _start_proxy(group, _port_of(endpoints.mongo_uri), delay_ms, log_dir, "mongo")
    proxies = [mongo_proxy]
    through = replace(endpoints, mongo_uri=_with_port(endpoints.mongo_uri, mongo_port))
    added = {"mongo": median_round_trip_ms("mongo", through.mongo_uri) - median_round_trip_ms("mongo", endpoints.mongo_uri)}
    if endpoints.redis_url:
        redis_proxy, redis_port = _start_proxy(group, _port_of(endpoints.redis_url), delay_ms, log_dir, "redis")
        proxies.append(redis_proxy)
        redis_url = _with_port(endpoints.redis_url, redis_port)
        through = replace(through, redis_url=redis_url)
        added["redis"] = median_round_trip_ms("redis", redis_url) - median_round_trip_ms("redis", endpoints.redis_url)
    through.pids = {**endpoints.pids, **{p.name: p.pid for p in proxies}}
    return DelayedEndpoints(through, proxies, {k: round(v, 3) for k, v in added.items()})
