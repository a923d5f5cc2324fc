"""Same limits, same answers, every framework: limits set on the command line (a short request timeout,
few header fields, few connections, a short keep-alive) are held to alike by Sanic, Tornado and aiohttp,
with the core's JSON error, over raw sockets against real servers. The limits are set small here so that
the slow cases take a second, not ten. Malformed and oversize requests under the default limits are
tests/test_http_framing.py's."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from reclab.host.ports import HOST
from reclab.host.processes import ProcessGroup
from reclab.run.server import RunningServer, start_server
from reclab.services.start import Endpoints
from servers.core.limits import Limits
from servers.core.variant import SELF_SERVED, Variant

# keep-alive 3 s: connections held open for the connection-limit test stay open while it runs
LIMITS = Limits(header_timeout_s=1.0, keepalive_s=3.0, max_connections=4, max_headers=20)
TIMED_OUT = {"error": "request_timeout", "detail": "the request was not received in time"}
READ_TIMEOUT_S = 8.0  # a reply must come well within this (the slowest case waits for the 1 s header timeout)


def exchange(port: int, request: bytes, pause_s: float = 0.0) -> tuple[int, dict | None]:
    """Send raw bytes, read the reply until the server closes or the reply is complete: (status, JSON body).
    Status 0: the connection was closed without a reply."""
    with socket.create_connection((HOST, port), timeout=READ_TIMEOUT_S) as conn:
        conn.sendall(request)
        if pause_s:
            time.sleep(pause_s)
        data = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := conn.recv(65536):
                data += chunk
                if complete(data):
                    break
    return parse(data)


def complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse(data: bytes) -> tuple[int, dict | None]:
    if not data:
        return 0, None
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, orjson.loads(body) if body else None


def fields(count: int) -> bytes:
    return b"".join(b"x-h%d: v\r\n" % i for i in range(count))


CASES = {  # request, status
    "as many header fields as max_headers": (b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields(19) + b"\r\n", 200),
    "one header field too many": (b"GET /health HTTP/1.1\r\nHost: x\r\n" + fields(20) + b"\r\n", 431),
    "a trailer field too many": (
        b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + fields(21) + b"\r\n",
        431,
    ),
}


@pytest.fixture(scope="module")
def servers(services: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    log_dir: Path = tmp_path_factory.mktemp("limits")
    with ProcessGroup() as group:
        yield {
            fw: start_server(group, fw, Variant(), services, log_dir, limits=LIMITS) for fw in SELF_SERVED
        }  # uvicorn and Granian frame HTTP themselves (tests/test_asgi_servers.py)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_every_framework_holds_to_max_headers(servers: dict[str, RunningServer], case: str) -> None:
    request, status = CASES[case]
    answers = {fw: exchange(server.port, request) for fw, server in servers.items()}
    assert {fw: s for fw, (s, _) in answers.items()} == dict.fromkeys(servers, status)
    if status != 200:  # (a /health body names the framework that answered)
        bodies = [body for _, body in answers.values()]
        assert bodies[0] == {"error": "header_fields_too_large", "detail": "the request head is too large"}
        assert all(body == bodies[0] for body in bodies), answers


@pytest.mark.slow
@pytest.mark.parametrize(
    "request_start",
    [b"GET /health HTTP/1.1\r\nHost: x\r\n", b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"],
    ids=["head", "body"],
)
def test_a_slow_request_gets_408_after_header_timeout_s_on_every_framework(
    servers: dict[str, RunningServer], request_start: bytes
) -> None:
    started = time.monotonic()
    answers = {fw: exchange(server.port, request_start) for fw, server in servers.items()}
    assert answers == dict.fromkeys(servers, (408, TIMED_OUT))
    assert time.monotonic() - started >= len(servers) * LIMITS.header_timeout_s  # one after another


@pytest.mark.slow
def test_one_connection_too_many_gets_503_with_retry_after(servers: dict[str, RunningServer]) -> None:
    for framework, server in servers.items():
        held = [socket.create_connection((HOST, server.port), timeout=5) for _ in range(LIMITS.max_connections)]
        try:
            time.sleep(0.3)  # the server has accepted them (and keeps them for the 3 s keep-alive)
            status, body = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (status, body and body["error"]) == (503, "unavailable"), framework
        finally:
            for conn in held:
                conn.close()
        deadline = time.monotonic() + 5  # once the server has seen them go, it serves again
        while (status := exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")[0]) != 200:
            assert time.monotonic() < deadline, f"{framework}: still {status} after the held connections closed"
            time.sleep(0.05)


@pytest.mark.slow
def test_an_idle_connection_is_closed_after_the_keepalive_timeout(servers: dict[str, RunningServer]) -> None:
    for framework, server in servers.items():
        with socket.create_connection((HOST, server.port), timeout=READ_TIMEOUT_S) as conn:
            assert conn.recv(1) == b"", framework  # closed by the server without a reply (a hang times out)
