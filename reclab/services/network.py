"""Puts a delay proxy in front of MongoDB and Redis for one run, and measures the delay it really adds:
idle before the load, and while the load runs."""

from __future__ import annotations

import socket
import statistics
import threading
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
from servers.core.uris import shown

PROBES = 200


@dataclass
class DelayedEndpoints:
    endpoints: Endpoints  # what the server connects to (through the proxies)
    proxies: list[Child]
    added_ms: dict[str, float]  # median added round-trip time per service, measured idle
    targets: dict[str, tuple[str, str]]  # service -> (direct URL, URL through the proxy), for a DelayProbe
    controls: dict[str, ProxyControl]  # service -> its proxy's control port (faults: stall, slow, refuse)


def _target_of(url: str) -> tuple[str, int]:
    """The host and port a delay proxy forwards to: the URL's own (one host, port explicit)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mongodb", "redis") or "," in parts.netloc:
        raise ValueError(f"delay emulation needs a mongodb:// or redis:// URL with one host: {shown(url)}")
    if parts.port is None or parts.hostname is None:
        raise ValueError(f"delay emulation needs an explicit host and port in {shown(url)}")
    return parts.hostname, parts.port


def through_proxy(url: str, port: int) -> str:
    """`url` pointed at a proxy on 127.0.0.1:`port`, keeping its credentials, path and options; a
    MongoDB URL also connects directly (the driver must not discover other members behind the proxy)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{HOST}:{port}" if credentials else f"{HOST}:{port}"
    query = parts.query
    if parts.scheme == "mongodb" and "directconnection=" not in query.lower():
        query = f"{query}&directConnection=true" if query else "directConnection=true"
    path = parts.path or ("/" if parts.scheme == "mongodb" and query else "")
    return parts._replace(netloc=netloc, path=path, query=query).geturl()


@dataclass(frozen=True)
class ProxyControl:
    """The control port of one delay proxy: `pass`, `slow MS`, `stall`, `refuse`."""

    port: int

    def set(self, command: str) -> None:
        with socket.create_connection((HOST, self.port), timeout=5) as conn:
            conn.sendall(command.encode() + b"\n")
            answer = conn.makefile("rb").readline().decode().strip()
        if answer != "ok":
            raise RuntimeError(f"delay proxy refused {command!r}: {answer or 'no answer'}")


def _start_proxy(
    group: ProcessGroup, target: tuple[str, int], delay_ms: float, log_dir: Path, name: str
) -> tuple[Child, int, ProxyControl]:
    port, control_port = free_port(), free_port()
    argv = python_module(
        "reclab.services.delay_proxy", "--listen-port", str(port), "--target-host", target[0], "--target-port", str(target[1]),
        "--delay-ms", str(delay_ms), "--control-port", str(control_port),
    )  # fmt: skip
    child = group.start(f"delay-{name}", argv, log_dir / f"delay-{name}.log")
    wait_for_port(port, 10.0, child.alive, f"delay proxy for {name}")
    wait_for_port(control_port, 10.0, child.alive, f"delay proxy control for {name}")
    return child, port, ProxyControl(control_port)


class Pinger:
    """One connection to a service, timing a trivial command (MongoDB ping, Redis PING)."""

    def __init__(self, service: str, url: str) -> None:
        self._close: Callable[[], object]
        self._ping: Callable[[], object]
        if service == "mongo":
            mongo: MongoClient = MongoClient(url, maxPoolSize=1, serverSelectionTimeoutMS=3000)
            self._ping, self._close = (lambda: mongo.admin.command("ping")), mongo.close
        else:
            cache = redis.Redis.from_url(url, socket_timeout=3)
            self._ping, self._close = cache.ping, cache.close
        self._ping()  # connect first

    def ping_ms(self) -> float:
        started = time.perf_counter()
        self._ping()
        return (time.perf_counter() - started) * 1000

    def close(self) -> None:
        self._close()


def median_round_trip_ms(service: str, url: str, probes: int = PROBES) -> float:
    """Median time of a trivial command over one connection."""
    pinger = Pinger(service, url)
    try:
        return statistics.median(pinger.ping_ms() for _ in range(probes))
    finally:
        pinger.close()


class DelayProbe(threading.Thread):
    """Measures the round trip the proxy adds while the load runs: pings each service directly and
    through the proxy, back to back, every `interval_s`, until stopped; `stop()` gives the median of
    the pairs' differences (queueing in the busy service, which both pings of a pair share, mostly
    cancels out)."""

    def __init__(self, targets: dict[str, tuple[str, str]], interval_s: float = 0.05) -> None:
        super().__init__(name="delay-probe", daemon=True)
        self._targets = targets  # service -> (direct URL, URL through the proxy)
        self._interval_s = interval_s
        self._stop_event = threading.Event()
        self._samples: dict[str, list[float]] = {name: [] for name in targets}

    def run(self) -> None:
        pingers = {name: (Pinger(name, direct), Pinger(name, through)) for name, (direct, through) in self._targets.items()}
        try:
            while not self._stop_event.wait(self._interval_s):
                for name, (direct, through) in pingers.items():
                    self._samples[name].append(through.ping_ms() - direct.ping_ms())
        except Exception:  # a service gone mid-run: keep what was measured
            pass
        finally:
            for direct, through in pingers.values():
                direct.close()
                through.close()

    def stop(self) -> dict[str, float]:
        self._stop_event.set()
        self.join(timeout=10)
        return {name: round(statistics.median(added), 3) for name, added in self._samples.items() if added}


def delayed(group: ProcessGroup, endpoints: Endpoints, delay_ms: float, log_dir: Path) -> DelayedEndpoints:
    """Proxies with `delay_ms` in front of MongoDB (and Redis if any), with their measured added delay."""
    mongo_proxy, mongo_port, mongo_control = _start_proxy(group, _target_of(endpoints.mongo_uri), delay_ms, log_dir, "mongo")
    proxies, controls = [mongo_proxy], {"mongo": mongo_control}
    through = replace(endpoints, mongo_uri=through_proxy(endpoints.mongo_uri, mongo_port))
    added = {"mongo": median_round_trip_ms("mongo", through.mongo_uri) - median_round_trip_ms("mongo", endpoints.mongo_uri)}
    targets = {"mongo": (endpoints.mongo_uri, through.mongo_uri)}
    if endpoints.redis_url:
        redis_proxy, redis_port, redis_control = _start_proxy(group, _target_of(endpoints.redis_url), delay_ms, log_dir, "redis")
        proxies.append(redis_proxy)
        controls["redis"] = redis_control
        through = replace(through, redis_url=through_proxy(endpoints.redis_url, redis_port))
        assert through.redis_url is not None
        added["redis"] = median_round_trip_ms("redis", through.redis_url) - median_round_trip_ms("redis", endpoints.redis_url)
        targets["redis"] = (endpoints.redis_url, through.redis_url)
    return DelayedEndpoints(through, proxies, {k: round(v, 3) for k, v in added.items()}, targets, controls)
