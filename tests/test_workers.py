"""`--workers N`: N worker processes on one socket, on every framework; /metrics counts the whole
server (summed in shared memory) across restarts; a graceful restart replaces every worker and fails
no request; the tally's rows add up (no mock: real servers over real sockets)."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import psutil
import pytest

from reclab.host.cores import core_plan, spread
from reclab.host.processes import Forker, ProcessGroup
from reclab.run.server import start_server
from reclab.services.start import Endpoints
from servers.core.tally import TALLY_ENV, Tally, join_shared, share_file
from servers.core.variant import SELF_SERVED, Variant, restart_signal
from tests.conftest import PATIENT


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answering_workers(base_url: str, expected: int, tries: int = 300) -> set[int]:
    """The worker PIDs that answer /health over new connections, until `expected` were seen (or `tries`)."""
    seen: set[int] = set()
    for _ in range(tries):
        seen.add(orjson.loads(get(base_url + "/health")[1])["worker"])
        if len(seen) >= expected:
            break
    return seen


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # the child only adds and exits
def test_a_tally_sums_every_row_and_each_process_adds_to_its_own() -> None:
    tally = Tally(rows=3)
    for row, amount in ((0, 2), (1, 5), (2, 0.5)):
        tally.row = row
        tally.add("requests", amount)
        tally.add("status_200", 1)
    assert tally.total("requests") == 7.5 and tally.total("status_200") == 3
    pid = os.fork()
    if pid == 0:  # a forked child adds to its own row of the same memory
        tally.row = 1
        tally.add("requests", 10)
        os._exit(0)
    os.waitpid(pid, 0)
    assert tally.total("requests") == 17.5


def test_a_file_backed_tally_gives_each_worker_a_row_and_a_gone_workers_row_to_its_replacement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tally of uvicorn's and Granian's workers: a file the master names in the environment; each
    worker (a process the master did not fork itself) claims a row of its own."""
    monkeypatch.delenv(TALLY_ENV, raising=False)
    monkeypatch.setattr("servers.core.tally._shared", None)  # put back afterwards: other tests' cores keep private tallies
    master = share_file(2)
    try:
        assert os.environ[TALLY_ENV] == master.path and master.path is not None and os.path.exists(master.path)
        rows = []
        for amount in (3, 4):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:  # a worker: its own row, its own count
                worker = join_shared()
                worker.add("requests", amount)
                os.write(write_end, bytes([worker.row]))
                os._exit(0)
            os.waitpid(pid, 0)
            rows.append(os.read(read_end, 1)[0])
            os.close(read_end)
            os.close(write_end)
        assert master.total("requests") == 7
        assert rows == [0, 0]  # the first worker was gone: its row went on to the next, with its count
        with pytest.raises(RuntimeError, match="held by a live worker"):
            join_shared(), join_shared(), join_shared()  # this process holds one row more each time
    finally:
        master.remove()
        monkeypatch.delenv(TALLY_ENV, raising=False)
    assert master.path is not None and not os.path.exists(master.path)


@pytest.mark.slow
@pytest.mark.parametrize("framework", [*SELF_SERVED, "starlette@uvicorn", "fastapi@granian"])  # the other two pairs:
# tests/test_asgi_servers.py (a SIGHUP restart of two workers under load)
def test_two_workers_serve_count_together_and_restart_without_failing_a_request(
    services: Endpoints, forker: Forker, tmp_path: Path, framework: str
) -> None:
    """Each server's own worker model: ours (Sanic, Tornado, aiohttp), uvicorn's supervisor, Granian's
    master; /metrics counts the whole server, and a graceful restart fails no request."""
    with ProcessGroup() as group:
        server = start_server(group, framework, Variant(), services, tmp_path, workers=2, limits=PATIENT, forker=forker)
        workers = answering_workers(server.base_url, 2)
        assert len(workers) == 2  # each connection goes to whichever worker accepts it first
        if framework in SELF_SERVED:
            assert len(server.process_ids()) == 3  # the master and two workers
        else:  # and uvicorn's multiprocessing resource tracker beside them
            assert set(server.process_ids()) >= {server.child.pid, *workers}
        for item in range(1, 31):
            assert get(f"{server.base_url}/recommend/items/{item}")[0] == 200
        metrics = server.get_json("/metrics")
        assert metrics["requests"] == 30 and metrics["responses"] == {"200": 30} and metrics["workers_started"] == 2

        statuses: list[int] = []

        def load() -> None:
            for n in range(120):
                statuses.append(get(f"{server.base_url}/recommend/items/{n % 30 + 1}")[0])

        under_load = threading.Thread(target=load)
        under_load.start()
        os.kill(server.child.pid, restart_signal(framework))  # each worker in turn: a new one, then the old one drains
        under_load.join()
        deadline = time.monotonic() + 30
        while server.get_json("/metrics")["workers_started"] < 4 or any(psutil.pid_exists(pid) for pid in workers):
            assert time.monotonic() < deadline, "the workers were not replaced"
            time.sleep(0.1)
        assert statuses == [200] * 120
        after = server.get_json("/metrics")
        assert after["requests"] == 150  # nothing counted before the restart was lost with the old workers
        assert answering_workers(server.base_url, 2).isdisjoint(workers)


def test_a_servers_workers_are_spread_over_its_cores_one_per_core_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    assert spread(10, [13, 11, 12], [2, 3]) == {10: [2, 3], 11: [2], 12: [3], 13: [2]}
    assert spread(10, [], [0]) == {10: [0]}
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3})
    plan = core_plan(True, server_cores=3)
    assert plan is not None and plan.server == [0, 1, 2] and plan.others == [3]
    with pytest.raises(ValueError, match="leave none"):
        core_plan(True, server_cores=4)
