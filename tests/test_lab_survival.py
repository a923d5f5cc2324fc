"""The lab survives its own faults: its children die with it (SIGHUP, SIGKILL, a second Ctrl-C while
it stops), a torn results file is set aside rather than appended to, a resumed bench must be the same
bench, the delay proxy keeps a URI's host and credentials, and the embedded Valkey wants a password."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
import redis

from reclab.errors import UsageError
from reclab.host.processes import ProcessGroup
from reclab.results.file import ResultsFile, read_results
from reclab.run.matrix import BASELINE
from reclab.services.network import _target_of, delayed, through_proxy
from reclab.services.start import Endpoints
from tests.records import record
from tests.test_bench import tiny_bench

# A lab in miniature: a process group with one child that ignores SIGTERM (so stopping it takes the
# whole stop timeout), the child's PID printed, then waiting to be signalled.
RUNNER = textwrap.dedent(
    """
    import sys, time
    from reclab.host.processes import ProcessGroup, python_module, stop_on_signals
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    with stop_on_signals(), ProcessGroup() as group:
        child = group.start("stubborn", [sys.executable, "-c", stubborn])
        print(child.pid, flush=True)
        time.sleep(120)
    """
)
FORKING_RUNNER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reclab.host.ports import free_port
    from reclab.host.processes import Forker, ProcessGroup
    group = ProcessGroup()
    forker = Forker(group, Path(sys.argv[2]) / "zygote.log")
    server = forker.fork("server", "servers.sanic_app", ["--mongo-uri", sys.argv[1], "--port", str(free_port())],
                         Path(sys.argv[2]) / "server.log")
    print(forker.child.pid, server.pid, flush=True)
    time.sleep(120)
    """
)


def start_runner(script: str, *args: str) -> tuple[subprocess.Popen[str], list[int]]:
    runner = subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE, text=True)
    assert runner.stdout is not None
    pids = [int(word) for word in runner.stdout.readline().split()]
    assert pids, "the runner did not start its children"
    return runner, pids


def gone(pids: list[int], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            return True
        time.sleep(0.05)
    return False


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        if psutil.pid_exists(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGHUP, signal.SIGTERM])
def test_children_die_with_the_runner(signum: int) -> None:
    runner, pids = start_runner(RUNNER)
    try:
        runner.send_signal(signum)
        runner.wait(timeout=30)
        assert gone(pids), f"left running after {signal.Signals(signum).name}: {pids}"
    finally:
        kill_all(pids)
        runner.kill()


def test_a_second_ctrl_c_does_not_cut_the_stopping_short() -> None:
    runner, pids = start_runner(RUNNER)
    try:
        runner.send_signal(signal.SIGINT)
        time.sleep(0.5)  # now stopping: the child ignores SIGTERM, so the runner waits before SIGKILL
        runner.send_signal(signal.SIGINT)
        runner.wait(timeout=30)
        assert gone(pids)
    finally:
        kill_all(pids)
        runner.kill()


@pytest.mark.slow
def test_a_server_forked_by_the_zygote_dies_when_the_lab_is_killed(services: Endpoints, tmp_path: Path) -> None:
    runner, pids = start_runner(FORKING_RUNNER, services.mongo_uri, str(tmp_path))
    try:
        assert all(psutil.pid_exists(p) for p in pids)
        runner.kill()  # SIGKILL: no cleanup code runs in the lab
        runner.wait(timeout=10)
        assert gone(pids), f"the zygote or its server outlived the lab: {pids}"
    finally:
        kill_all(pids)


def test_a_torn_last_line_is_set_aside_and_never_glued_onto(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    first = record(BASELINE, 0, 100.0)
    results.append(first)
    with open(results.path, "ab") as torn:
        torn.write(b'{"schema": 2, "kind": "run", "key": "half a rec')
    aside = results.set_aside_torn_line()
    assert aside is not None and aside.read_bytes() == b'{"schema": 2, "kind": "run", "key": "half a rec'
    results.append(record(BASELINE, 1, 101.0))
    assert [r.repeat for r in read_results(results.path)] == [0, 1]
    assert results.set_aside_torn_line() is None


def test_resume_refuses_a_folder_of_another_bench(tmp_path: Path) -> None:
    ResultsFile(tmp_path / "results.jsonl").append(record(BASELINE, 0, 100.0))  # another stream and dataset
    with pytest.raises(UsageError, match=r"started with another.*stream"):
        tiny_bench(tmp_path, resume=True)


def test_the_proxy_url_keeps_credentials_options_and_its_target_host() -> None:
    uri = "mongodb://user:pw@db.example:27017/?authSource=admin"
    assert through_proxy(uri, 4000) == "mongodb://user:pw@127.0.0.1:4000/?authSource=admin&directConnection=true"
    assert _target_of(uri) == ("db.example", 27017)
    assert through_proxy("redis://:secret@cache.example:6380/2", 4001) == "redis://:secret@127.0.0.1:4001/2"
    with pytest.raises(ValueError, match="one host"):
        _target_of("mongodb://a:1,b:2/?replicaSet=rs")


def test_the_embedded_valkey_wants_its_password_and_the_proxy_passes_it_on(services: Endpoints, tmp_path: Path) -> None:
    assert services.redis_url is not None and "@" in services.redis_url
    parts = urlsplit(services.redis_url)
    bare = parts._replace(netloc=f"{parts.hostname}:{parts.port}").geturl()  # the same URL without the password
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(bare, socket_timeout=5).ping()
    with ProcessGroup() as group:
        net = delayed(group, services, 0.0, tmp_path)
        assert net.endpoints.redis_url is not None
        assert redis.Redis.from_url(net.endpoints.redis_url, socket_timeout=5).ping()


def test_a_refusing_proxy_really_refuses_and_comes_back(services: Endpoints, tmp_path: Path) -> None:
    with ProcessGroup() as group:
        net = delayed(group, services, 0.0, tmp_path)
        assert net.endpoints.redis_url is not None
        port = int(net.endpoints.redis_url.rsplit(":", 1)[1].split("/")[0])
        net.controls["redis"].set("refuse")
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=port, socket_timeout=2).ping()
        net.controls["redis"].set("pass")
        assert redis.Redis.from_url(net.endpoints.redis_url, socket_timeout=5).ping()
        with pytest.raises(RuntimeError, match="refused"):
            net.controls["redis"].set("explode")
