"""FastAPI and Starlette on uvicorn and Granian: the framework/server pairs as the lab names and records
them, each server's own worker model (SIGHUP: a graceful restart that picks up new rules and fails no
request), rules watched in place, the server's CPU counted over every thread, and what each server
answers itself before the application sees a request, as the README's parity table lists it."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from reclab.cli import main
from reclab.host.cores import process_cpu_seconds
from reclab.host.processes import Forker, ProcessGroup
from reclab.results.config import RunConfig
from reclab.run.matrix import build_matrix
from reclab.run.server import RunningServer, start_server
from reclab.services.start import Endpoints
from servers.core.limits import Limits
from servers.core.rules import DEFAULT_RULES
from servers.core.variant import STACKS, Variant, restart_signal, split_stack, stack_of, stacks_named
from tests.conftest import PATIENT
from tests.polling import wait_for

ASGI_STACKS = [s for s in STACKS if "@" in s]


def get(url: str, timeout_s: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_pairs_are_named_recorded_and_keyed_by_framework_and_server() -> None:
    assert STACKS == (
        "sanic", "tornado", "aiohttp", "fastapi@uvicorn", "starlette@uvicorn", "fastapi@granian", "starlette@granian",
    )  # fmt: skip
    assert stack_of("fastapi") == "fastapi@uvicorn" and stack_of("starlette", "granian") == "starlette@granian"
    assert split_stack("fastapi@granian") == ("fastapi", "granian") and split_stack("sanic") == ("sanic", None)
    assert stacks_named(["fastapi", "sanic"]) == ["fastapi@uvicorn", "fastapi@granian", "sanic"]
    assert stacks_named(["starlette"], "granian") == ["starlette@granian"]
    for bad in (("sanic", "granian"), ("fastapi", "hypercorn"), ("flask", None)):
        with pytest.raises(ValueError):
            stack_of(*bad)
    config = RunConfig.of("fastapi@granian", Variant(), "asyncio")
    assert (config.framework, config.server, config.stack) == ("fastapi", "granian", "fastapi@granian")
    assert config.key.startswith("fastapi@granian+asyncio/") and config.level("framework") == "fastapi@granian"
    assert config.differing_factors(RunConfig.of("sanic", Variant(), "asyncio")) == ["framework"]
    back = config.with_factor("framework", "tornado")
    assert (back.framework, back.server) == ("tornado", None)
    with pytest.raises(ValueError, match="needs a server"):
        RunConfig(framework="starlette")
    frameworks = build_matrix("frameworks")
    assert {(e.config.stack, e.config.loop) for e in frameworks} == {(s, lp) for s in STACKS for lp in ("uvloop", "asyncio")}
    assert restart_signal("sanic") != restart_signal("fastapi@uvicorn") == restart_signal("starlette@granian")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--framework", "sanic", "--server", "granian"], "sanic serves itself"),
        (["bench", "--frameworks", "tornado", "--server", "uvicorn"], "--server applies to FastAPI and Starlette"),
        (["bench", "--frameworks", "fastapi@hypercorn"], "invalid choice"),
    ],
)
def test_a_pair_that_does_not_exist_is_a_usage_error(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with contextlib.suppress(SystemExit):
        assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["fastapi@uvicorn", "starlette@granian"])
def test_sighup_restarts_the_workers_gracefully_with_new_rules(
    services: Endpoints, forker: Forker, tmp_path: Path, framework: str
) -> None:
    rules = tmp_path / "rules.toml"
    original = DEFAULT_RULES.read_text()
    rules.write_text(original)
    with ProcessGroup() as group:
        server = start_server(
            group, framework, Variant(), services, tmp_path, rules=rules, workers=2, limits=PATIENT, forker=forker
        )
        before = server.get_json("/health")
        old_workers = {before["worker"]}
        wait_for(lambda: old_workers.add(server.get_json("/health")["worker"]) or len(old_workers) == 2)
        assert get(server.base_url + "/recommend/items/7?service=new/thing")[0] == 400
        rules.write_text(original + '\n[services."new/thing"]\ntype = "similar"\nlimit = 3\n')
        statuses: list[int] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                statuses.append(get(f"{server.base_url}/recommend/items/{len(statuses) % 30 + 1}")[0])

        under_load = threading.Thread(target=load)
        under_load.start()
        try:
            os.kill(server.child.pid, restart_signal(framework))  # uvicorn's and Granian's graceful restart
            wait_for(lambda: not any(psutil.pid_exists(pid) for pid in old_workers))  # both replaced, one after the other
            wait_for(lambda: server.get_json("/metrics")["workers"] == 2)
        finally:
            stop.set()
            under_load.join()
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        status, answer = get(server.base_url + "/recommend/items/7?service=new/thing")
        assert status == 200 and orjson.loads(answer)["count"] == 3
        metrics = server.get_json("/metrics")
        assert metrics["workers_started"] == 4 and metrics["responses"]["200"] >= len(statuses)  # the old workers' counts kept
        assert server.get_json("/health")["rules"] != before["rules"]


@pytest.mark.slow
def test_rules_watched_on_an_asgi_server_are_reloaded_in_place(services: Endpoints, forker: Forker, tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(DEFAULT_RULES.read_text())
    with ProcessGroup() as group:
        server = start_server(
            group, "fastapi@granian", Variant(), services, tmp_path, rules=rules, watch_rules=True, forker=forker
        )
        before = server.get_json("/health")
        rules.write_text(DEFAULT_RULES.read_text() + '\n[services."new/thing"]\ntype = "similar"\nlimit = 3\n')
        wait_for(lambda: server.get_json("/health")["rules"] != before["rules"], timeout_s=10)
        assert server.get_json("/health")["worker"] == before["worker"]  # the same worker: reloaded in place
        assert get(server.base_url + "/recommend/items/7?service=new/thing")[0] == 200
        assert server.get_json("/metrics")["rules_reloads"] == 1


def worker_threads_cpu(pid: int) -> tuple[float, float]:
    """(CPU seconds of the worker's main thread, of all its threads)."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as handle:
        main_thread = int(handle.read().split()[0]) / 1e9
    return main_thread, process_cpu_seconds(pid)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["starlette@granian", "fastapi@uvicorn"])
def test_the_servers_cpu_counts_every_process_and_thread(
    services: Endpoints, forker: Forker, tmp_path: Path, framework: str
) -> None:
    with ProcessGroup() as group:
        server: RunningServer = start_server(group, framework, Variant(), services, tmp_path, limits=PATIENT, forker=forker)
        worker = int(server.get_json("/health")["worker"])
        assert worker != server.child.pid and worker in server.process_ids()  # the master and its worker
        for item in range(1, 201):
            assert get(f"{server.base_url}/recommend/items/{item % 40 + 1}")[0] == 200
        main_thread, every_thread = worker_threads_cpu(worker)
        assert psutil.Process(worker).num_threads() > 1
        if framework.endswith("@granian"):  # the Rust runtime's threads do the HTTP work beside Python's
            assert every_thread > main_thread * 1.01, (every_thread, main_thread)
        assert every_thread >= main_thread


def raw_exchange(port: int, request: bytes, wait_s: float = 5.0) -> tuple[int, bytes]:
    """Send raw bytes and read one reply: (status, body); status 0 when the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as conn:
        conn.sendall(request)
        data = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := conn.recv(65536):
                data += chunk
                head, found, body = data.partition(b"\r\n\r\n")
                lengths = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if found and lengths and len(body) >= int(lengths[0].split(b":")[1]):
                    break
    if not data:
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


LIMITS = Limits(header_timeout_s=1.0)
INVALID = (400, b"Invalid HTTP request received.")  # uvicorn's own answer (text/plain)
SERVED = (200, b"/health")  # the application answered: the server let the request through
PAYLOAD_TOO_LARGE = (413, b'{"error":"payload_too_large","detail":"the request body is too large"}')
# What each server answers itself (the README's parity table); Sanic, Tornado and aiohttp answer every one
# of these in the core's JSON (tests/test_http_framing.py, tests/test_limits.py).
FRAMING = {
    "bad request line": (b"GARBAGE\r\n\r\n", {"uvicorn": INVALID, "granian": (400, b"")}),
    "bad Content-Length": (
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        {"uvicorn": INVALID, "granian": (400, b"")},
    ),
    "HTTP/1.1 without Host": (b"GET /health HTTP/1.1\r\n\r\n", {"uvicorn": SERVED, "granian": SERVED}),
    "head over max_header_bytes": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        {"uvicorn": SERVED, "granian": SERVED},
    ),
    "target over max_header_bytes": (
        b"GET /health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        {"uvicorn": SERVED, "granian": SERVED},
    ),
    "header fields over max_headers": (
        b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(101)) + b"\r\n",
        {"uvicorn": SERVED, "granian": (431, b"")},
    ),
    "body over max_body_bytes": (  # the application's refusal: the core's JSON on every server
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + b"a" * 70000,
        {"uvicorn": PAYLOAD_TOO_LARGE, "granian": PAYLOAD_TOO_LARGE},
    ),
}


@pytest.fixture(scope="module")
def asgi_servers(
    services: Endpoints, forker: Forker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningServer]]:
    log_dir: Path = tmp_path_factory.mktemp("asgi")
    limits = Limits(header_timeout_s=1.0, max_connections=4)
    with ProcessGroup() as group:
        yield {
            "uvicorn": start_server(group, "fastapi@uvicorn", Variant(), services, log_dir, limits=limits, forker=forker),
            "granian": start_server(group, "starlette@granian", Variant(), services, log_dir, limits=limits, forker=forker),
        }


@pytest.mark.slow
@pytest.mark.parametrize("case", FRAMING)
def test_what_each_server_answers_itself_is_as_listed(asgi_servers: dict[str, RunningServer], case: str) -> None:
    request, expected = FRAMING[case]
    for server_name, server in asgi_servers.items():
        status, body = raw_exchange(server.port, request)
        want_status, want_body = expected[server_name]
        assert status == want_status, (server_name, status, body[:80])
        if (want_status, want_body) == SERVED:
            assert orjson.loads(body)["status"] == "ok"
        else:
            assert body == want_body, (server_name, body[:80])


@pytest.mark.slow
def test_a_slow_head_is_held_by_uvicorn_and_closed_unanswered_by_granian(asgi_servers: dict[str, RunningServer]) -> None:
    outcomes = {}
    for server_name, server in asgi_servers.items():
        with socket.create_connection(("127.0.0.1", server.port), timeout=4.0) as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finished
            began = time.monotonic()
            try:
                outcomes[server_name] = ("closed", conn.recv(100), round(time.monotonic() - began))
            except TimeoutError:
                outcomes[server_name] = ("open", b"", 4)
    assert outcomes["uvicorn"] == ("open", b"", 4)  # no limit on receiving a head
    assert outcomes["granian"][:2] == ("closed", b"")  # after header_timeout_s (1 s here), without a reply


@pytest.mark.slow
def test_connections_beyond_the_limit_get_uvicorns_503_and_granian_serves_them(asgi_servers: dict[str, RunningServer]) -> None:
    for server_name, server in asgi_servers.items():
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=5.0) for _ in range(6)]
        try:
            time.sleep(0.3)
            status, body = raw_exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        finally:
            for conn in held:
                conn.close()
        if server_name == "uvicorn":  # limit_concurrency = max_connections (4): text/plain
            assert (status, body) == (503, b"Service Unavailable")
        else:  # Granian has no connection limit
            assert status == 200 and orjson.loads(body)["status"] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["fastapi@uvicorn", "starlette@granian"])
def test_a_restart_with_a_bad_rule_file(services: Endpoints, forker: Forker, tmp_path: Path, framework: str) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(DEFAULT_RULES.read_text())
    with ProcessGroup() as group:
        server = start_server(group, framework, Variant(), services, tmp_path, rules=rules, limits=PATIENT, forker=forker)
        before = server.get_json("/health")["worker"]
        rules.write_text(DEFAULT_RULES.read_text() + '\n[services."broken"]\ntype = "nonsense"\n')
        os.kill(server.child.pid, restart_signal(framework))
        if framework.endswith("@uvicorn"):  # uvicorn waits for the new worker: it never starts, the old one serves on
            wait_for(lambda: "aborting the restart" in server.child.log_tail(40))
            assert server.get_json("/health")["worker"] == before and server.child.alive()
        else:  # Granian stops the old worker after a fixed wait, ready or not: the server stops
            wait_for(lambda: not server.child.alive())
        assert "nonsense" in server.child.log_tail(80)
