"""Load from several machines, tried on loopback: a bench whose load comes from two `reclab loadgen`
workers through a locust master writes the same results as with local locust processes; a bench
whose workers never come says so; a worker that dies fails the runs it was needed for, and the
matrix goes on; everything ends with the bench."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from hdrh.histogram import HdrHistogram

from reclab.errors import GeneratorError, UsageError
from reclab.host.ports import free_port
from reclab.load.distributed import MasterAddress
from reclab.results.file import read_results
from reclab.run.server import RunningServer
from tests.test_bench import tiny_bench
from workloads.loadplan import LoadSettings, Mailbox, PhasePlan

LOADGEN_EXIT_S = 30.0


def start_loadgens(port: int, processes: int, log_dir: Path) -> subprocess.Popen[bytes]:
    argv = ["loadgen", "--master", f"127.0.0.1:{port}", "--processes", str(processes), "--log-dir", str(log_dir)]
    return subprocess.Popen([sys.executable, "-m", "reclab.cli", *argv])


def settings(run_id: str) -> LoadSettings:
    phases = (PhasePlan("p", "closed", 0, 1),)
    return LoadSettings(run_id, "http://127.0.0.1:1", "paths", 1, 1, "poisson", 1, 1, 0, phases, "signals", "out")


def test_a_master_address_is_host_and_port() -> None:
    assert MasterAddress.parse("127.0.0.1:5557") == MasterAddress("127.0.0.1", 5557)
    for bad in ("5557", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000", "127.0.0.1:²"):
        with pytest.raises(UsageError, match="HOST:PORT"):
            MasterAddress.parse(bad)


def test_a_mailbox_gives_each_run_once(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.json"
    mailbox = Mailbox(path)
    assert mailbox.new_run() is None
    settings("a").post(path)
    first = mailbox.new_run()
    assert first is not None and first.run_id == "a"
    assert mailbox.new_run() is None
    settings("a").post(path)  # the same run posted again is not a new one
    assert mailbox.new_run() is None
    settings("b").post(path)
    second = mailbox.new_run()
    assert second is not None and second.run_id == "b"


@pytest.mark.slow
def test_two_loadgen_workers_give_the_same_results_as_local_processes(tmp_path: Path) -> None:
    port = free_port()
    loadgens = start_loadgens(port, 2, tmp_path / "loadgen")
    try:
        remote = tiny_bench(
            tmp_path / "distributed", matrix="frameworks", frameworks=["sanic"], order_seed=3, loadgens=2,
            loadgen_master=f"127.0.0.1:{port}", loadgen_wait_s=60,
        )  # fmt: skip
        assert remote == 0
        assert loadgens.wait(timeout=LOADGEN_EXIT_S) == 0  # the bench's end tells its workers to quit
    finally:
        if loadgens.poll() is None:
            loadgens.kill()
            loadgens.wait()
    assert tiny_bench(tmp_path / "local", matrix="frameworks", frameworks=["sanic"], order_seed=3, processes=2) == 0
    distributed, local = (read_results(tmp_path / name / "results.jsonl") for name in ("distributed", "local"))
    assert [r.kind for r in distributed] == [r.kind for r in local]
    assert {r.bench.generator for r in distributed} == {"distributed"} and {r.bench.generator for r in local} == {"local"}
    for remote_run, local_run in zip(distributed, local, strict=True):
        assert remote_run.status == "ok", remote_run.error
        assert remote_run.bench.load == local_run.bench.load  # the same processes, users, phases
        if remote_run.kind == "run":
            assert remote_run.warmup is not None and remote_run.warmup.ok == remote_run.warmup.requests
        for remote_phase, local_phase in zip(remote_run.phases, local_run.phases, strict=True):
            assert remote_phase.ok > 0 and remote_phase.error_count == 0
            assert HdrHistogram.decode(remote_phase.hdr).get_total_count() == remote_phase.ok  # both workers' merged
            assert remote_phase.cpu.processes["generator.0"] > 0 and remote_phase.cpu.processes["generator.1"] > 0
            assert "generator" in remote_phase.utilisation
            if remote_phase.arrivals is not None:  # open loop: the same arrivals, every one accounted for
                assert local_phase.arrivals is not None
                assert remote_phase.arrivals.expected == local_phase.arrivals.expected
                assert remote_phase.arrivals.sent + remote_phase.arrivals.unsent == remote_phase.arrivals.expected


@pytest.mark.slow
def test_a_bench_whose_loadgens_never_attach_says_so(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(GeneratorError, match="0 of 2 load generator"):
        tiny_bench(tmp_path, matrix="frameworks", frameworks=["sanic"], loadgens=2,
                   loadgen_master=f"127.0.0.1:{free_port()}", loadgen_wait_s=2)  # fmt: skip
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_a_loadgen_worker_that_dies_fails_its_runs_and_the_matrix_goes_on(tmp_path: Path) -> None:
    port = free_port()
    loadgens = start_loadgens(port, 2, tmp_path / "loadgen")
    killed: list[int] = []

    def kill_a_worker_soon(_server: RunningServer) -> None:
        if not killed:
            worker = psutil.Process(loadgens.pid).children()[0]
            killed.append(worker.pid)
            threading.Timer(0.2, worker.kill).start()

    try:
        code = tiny_bench(
            tmp_path / "bench", matrix="frameworks", frameworks=["sanic"], no_ceiling=True, loadgens=2,
            loadgen_master=f"127.0.0.1:{port}", loadgen_wait_s=60, on_server=kill_a_worker_soon,
        )  # fmt: skip
        assert loadgens.wait(timeout=LOADGEN_EXIT_S) != 0  # it says one of its workers failed
    finally:
        if loadgens.poll() is None:
            loadgens.kill()
            loadgens.wait()
    assert code == 3 and killed
    records = read_results(tmp_path / "bench" / "results.jsonl")
    assert len(records) == 3 and all(r.status == "failed" for r in records)
    assert any("load generator" in (r.error or "") for r in records)
