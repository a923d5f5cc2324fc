"""Failure paths: unreachable services fail fast with a clear message and leave nothing running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest

from reclab.host.ports import free_port
from reclab.host.processes import ProcessGroup
from servers.core.runtime import Settings, open_runtime
from servers.core.variant import Variant

NO_MONGO = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"


def test_serve_with_unreachable_mongo_uri_fails_fast_and_clearly() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "reclab.cli", "serve", "--framework", "sanic", "--mongo-uri", NO_MONGO],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "cannot reach MongoDB" in result.stderr and NO_MONGO in result.stderr
    assert time.monotonic() - started < 15


def test_serve_with_unreachable_redis_url_fails_clearly(services) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reclab.cli",
            "serve",
            "--framework",
            "tornado",
            "--cache",
            "redis",
            "--mongo-uri",
            services.mongo_uri,
            "--redis-url",
            f"redis://127.0.0.1:{free_port()}/0",
            "--spec",
            "workloads/specs/tiny.toml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot reach Redis" in result.stderr


async def test_core_refuses_unreachable_mongo_within_seconds() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="cannot reach MongoDB"):
        await open_runtime(Settings(mongo_uri=NO_MONGO, variant=Variant(driver="motor")))
    assert time.monotonic() - started < 10


def test_bad_spec_is_reported_by_the_cli(tmp_path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text("[dataset]\nusers = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "reclab.cli", "data", "--spec", str(spec)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert f"{spec}: dataset.users: must be >= 2" in result.stderr


def test_a_server_that_cannot_start_is_reported_and_stopped(services, tmp_path) -> None:
    from reclab.run.server import start_server

    bad_rules = tmp_path / "rules.toml"
    bad_rules.write_text("[services.a]\ntype = 'nope'\n")
    with ProcessGroup() as group, pytest.raises(RuntimeError, match="exited at start-up"):
        start_server(group, "sanic", Variant(), services, tmp_path, rules=bad_rules)
    assert not group.children


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_everything_it_started_on_ctrl_c_and_sigterm(signum: int) -> None:
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "reclab.cli", "serve", "--framework", "sanic", "--port", str(port),
         "--spec", "workloads/specs/tiny.toml", "--cache", "redis"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        children = psutil.Process(serve.pid).children(recursive=True)
        assert len(children) >= 3  # MongoDB, Valkey, the server
        serve.send_signal(signum)
        serve.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [p.cmdline()[:3] for p in alive]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
