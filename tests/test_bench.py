"""`reclab bench`: spec validation, deterministic streams, a tiny real run on every framework, and a
run whose server dies mid-way (recorded as failed, nothing left running)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from reclab.commands.bench import BenchArgs, bench
from reclab.errors import UsageError
from reclab.results.config import RunConfig
from reclab.results.file import ResultsFile, read_results
from reclab.results.record import RunRecord
from reclab.run.matrix import BASELINE, MatrixEntry
from reclab.run.measure import ServerHook
from reclab.run.runner import BenchOptions, run_matrix
from reclab.run.server import RunningServer
from reclab.run.workload import prepare_workload
from servers.core.rules import DEFAULT_RULES, load_rules
from servers.core.tomlcheck import SpecError
from servers.core.variant import LOOPS
from tests.conftest import PATIENT, TINY_SPEC
from tests.records import failed, record
from workloads.dataset import generate
from workloads.spec import load_spec
from workloads.stream import build_stream, check_services


def tiny_bench(out: Path, spec: Path = TINY_SPEC, on_server: ServerHook | None = None, **flags: Any) -> int:
    """`reclab bench` of a tiny quick run, one repeat, no services warm-up run, patient servers."""
    given = {"limits": PATIENT, **flags}
    return bench(BenchArgs(spec=spec, quick=True, repeats=1, out=out, no_warmup_run=True, **given), on_server=on_server)


def test_stream_services_must_exist_and_match_their_route(tmp_path: Path) -> None:
    path = tmp_path / "spec.toml"
    path.write_text("[requests]\nitem_services = { 'home/for-you' = 1.0 }\n")
    with pytest.raises(SpecError, match="is a 'personal' service"):
        check_services(load_spec(path), load_rules())


def test_same_spec_same_stream_other_seed_other_stream(tmp_path: Path) -> None:
    spec = load_spec(TINY_SPEC)
    dataset = generate(spec.dataset)
    first, second = build_stream(spec, dataset), build_stream(spec, dataset)
    assert first.hash == second.hash and first.paths == second.paths
    other = tmp_path / "other.toml"
    other.write_text(TINY_SPEC.read_text().replace("seed = 99", "seed = 100"))
    assert build_stream(load_spec(other), dataset).hash != first.hash


def test_hotspot_concentrates_requests(tmp_path: Path) -> None:
    spec_path = tmp_path / "hot.toml"
    spec_path.write_text(
        "[dataset]\nitems = 1000\ncategories = 10\nusers = 100\n"
        "[requests]\nuser_share = 0.0\npopularity = 'hotspot'\nhotspot_fraction = 0.01\nhotspot_share = 0.9\n"
    )
    spec = load_spec(spec_path)
    paths = build_stream(spec, generate(spec.dataset)).paths
    items = [p.split("/")[3].split("?")[0] for p in paths]
    top10 = sum(n for _, n in Counter(items).most_common(10))
    assert 0.85 < top10 / len(items) < 0.95


ONE_PER_SERVER = ("sanic", "fastapi@uvicorn", "starlette@granian")  # a stack per worker model: our master, uvicorn's, Granian's


@pytest.mark.slow
def test_a_tiny_real_run_writes_well_formed_result_lines(tmp_path: Path) -> None:
    assert tiny_bench(tmp_path, matrix="frameworks", frameworks=list(ONE_PER_SERVER), order_seed=7) == 0
    records = read_results(tmp_path / "results.jsonl")
    assert records[0].kind == "ceiling" and all(r.kind == "run" for r in records[1:])
    runs = records[1:]
    assert {(r.config.stack, r.config.loop) for r in runs} == {(f, lp) for f in ONE_PER_SERVER for lp in LOOPS}
    assert sorted(r.role for r in runs).count("aa") == 1 and runs[0].bench.seed.order == 7
    assert runs[0].bench.limits == PATIENT.as_dict()
    for run in runs:
        assert run.status == "ok", run.error
        assert run.server_loop == run.config.loop
        assert run.warmup is not None and run.warmup.ok == run.warmup.requests and not run.warmup.errors
        assert [p.name for p in run.phases] == ["open", "closed"]
        assert run.bench.stream_hash == runs[0].bench.stream_hash and run.bench.dataset_hash
        assert run.bench.versions["sanic"] and run.bench.commit and run.bench.machine["cores"]
        for phase in run.phases:
            assert phase.ok > 0 and phase.error_count == 0 and phase.throughput_rps > 0
            lat = phase.latency_us
            assert lat is not None and 0 < lat.p50 <= lat.p90 <= lat.p99 <= lat.p99_9 <= lat.max
            assert HdrHistogram.decode(phase.hdr).get_total_count() == phase.ok + phase.error_count
            assert phase.cpu.processes["server"] > 0 and {"database", "cache", "generator.0"} <= set(phase.cpu.processes)
            assert phase.server_cpu_ms_per_request and phase.db_ops_per_request > 0 and phase.db_round_trips_per_request > 0
            assert phase.pace_us is not None and phase.pace_us > 0
            assert phase.cache_hit_ratio is not None and 0 <= phase.cache_hit_ratio <= 1
            assert phase.bottleneck in ("server", "database", "cache", "generator", "proxy", "shared-core", "none")
            assert set(phase.utilisation) >= {"server", "database", "generator", "shared-core"}
        arrivals = run.phases[0].arrivals
        assert arrivals is not None and arrivals.sent + arrivals.unsent == arrivals.expected > 0
    # The same work for every variant: a fixed warm-up prefix, then the same arrivals.
    assert len({(r.warmup.requests if r.warmup else None, r.phases[0].arrivals) for r in runs}) == 1
    assert sorted(r.order for r in runs if r.repeat == 0) == list(range(len(runs)))


@pytest.mark.slow
def test_a_run_whose_server_dies_is_recorded_as_failed_and_the_matrix_goes_on(tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_first_server_soon(server: RunningServer) -> None:
        if not killed:
            killed.append(server.child.pid)
            threading.Timer(0.3, os.kill, (server.child.pid, signal.SIGKILL)).start()

    assert (
        tiny_bench(tmp_path, matrix="frameworks", frameworks=["tornado"], no_ceiling=True, on_server=kill_first_server_soon) == 3
    )
    records = read_results(tmp_path / "results.jsonl")
    assert [r.status for r in records] == ["failed", "ok"]
    assert "server exited" in (records[0].error or "") and "failed" in records[0].flags
    # no_leftover_processes (conftest) checks that nothing the bench started is still running.


def test_resume_skips_finished_runs(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    done, broken = record(BASELINE, 0, 100.0), failed(BASELINE.with_factor("cache", "none"), 0, "RuntimeError: boom")
    results.append(done)
    results.append(broken)
    assert results.finished_keys() == {done.run_key}


def open_loop_spec(tmp_path: Path, rate: float, duration_s: float = 1.5, arrival: str = "poisson") -> Path:
    spec = tmp_path / "open.toml"
    load = f'[load]\nmode = "open"\nrate = {rate}\narrival = "{arrival}"\nwarmup_requests = 20\nduration_s = {duration_s}\n'
    spec.write_text(TINY_SPEC.read_text().split("[load]")[0] + load)
    return spec


@pytest.mark.slow
def test_an_open_loop_run_accounts_for_every_arrival_due_in_the_window(tmp_path: Path) -> None:
    spec = open_loop_spec(tmp_path, 80)
    args = BenchArgs(spec=spec, repeats=1, out=tmp_path / "out", no_warmup_run=True, no_ceiling=True, matrix="frameworks",
                     frameworks=("tornado",), limits=PATIENT)  # fmt: skip
    assert bench(args) == 0
    for run in read_results(tmp_path / "out" / "results.jsonl"):
        assert run.status == "ok", run.error
        (phase,) = run.phases
        assert phase.name == "open" and phase.arrivals is not None
        assert phase.arrivals.sent + phase.arrivals.unsent == phase.arrivals.expected
        assert phase.ok + phase.error_count == phase.arrivals.expected
        assert phase.arrivals.expected == pytest.approx(80 * 1.5, rel=0.2)
        assert phase.throughput_rps == pytest.approx(80, rel=0.3) and phase.offered_rps == 80


@pytest.mark.slow
def test_at_three_times_capacity_every_arrival_is_still_accounted_for(tmp_path: Path) -> None:
    """Capacity first (closed loop), then an open loop at three times it: the arrivals the server
    cannot take are unsent or unanswered, and their waiting is in the tail."""
    overload = BASELINE.with_factor("cache", "none")
    capacity_spec = tmp_path / "closed.toml"
    # few enough users that the closed loop stays inside the server's 1 s deadline (beyond it: 503s, not capacity)
    closed = '[load]\nmode = "closed"\nusers = 8\nwarmup_requests = 20\nduration_s = 2\n'
    capacity_spec.write_text(TINY_SPEC.read_text().split("[load]")[0] + closed)
    capacity = measure_runs(tmp_path / "capacity", capacity_spec, overload)[0].phases[0].throughput_rps
    rate, window = round(3 * capacity), 2.0
    runs = measure_runs(tmp_path / "overload", open_loop_spec(tmp_path, rate, window, "constant"), overload)
    (phase,) = runs[0].phases
    arrivals = phase.arrivals
    assert arrivals is not None and arrivals.expected == pytest.approx(rate * window, rel=0.05)
    assert arrivals.sent + arrivals.unsent == arrivals.expected
    assert phase.ok + phase.error_count == arrivals.expected
    assert phase.latency_us is not None and phase.latency_us.p99 >= window / 2 * 1e6
    assert phase.throughput_rps < rate / 2  # saturated: most arrivals wait


@pytest.mark.slow
def test_a_stalled_server_shows_in_the_tail_not_as_missing_requests(tmp_path: Path) -> None:
    spec = open_loop_spec(tmp_path, 60, 2.0)

    def stall_for_a_second(server: RunningServer) -> None:
        """Stop the server 0.5 s into the open phase, for long enough to outlast the phase."""

        def stall() -> None:
            deadline = time.monotonic() + 60
            while not list(tmp_path.glob("out/runs/*/signals/t0")) and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.6)
            stalled = server.process_ids()  # the master and its worker
            for pid in stalled:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(2.5)
            for pid in stalled:
                os.kill(pid, signal.SIGCONT)

        threading.Thread(target=stall, daemon=True).start()

    runs = measure_runs(tmp_path, spec, BASELINE.with_factor("cache", "local"), on_server=stall_for_a_second)
    (phase,) = runs[0].phases
    assert phase.arrivals is not None and phase.arrivals.sent + phase.arrivals.unsent == phase.arrivals.expected
    assert phase.unfinished > 0 and "open:unfinished_requests" in runs[0].flags
    assert phase.latency_us is not None and phase.latency_us.max >= 1.0e6


def measure_runs(tmp_path: Path, spec: Path, config: RunConfig, on_server: ServerHook | None = None) -> list[RunRecord]:
    """One run of `config` under `spec` (no ceiling, no services warm-up)."""
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    workload = prepare_workload(spec, out / "runs", load_rules())
    options = BenchOptions(matrix="frameworks", repeats=1, ceiling=False, warmup_run=False)
    entries = [MatrixEntry(config, "baseline")]
    run_matrix(workload, workload.spec.load, options, out, mongo_uri=None, redis_url=None, rules=DEFAULT_RULES,
               on_server=on_server, entries=entries)  # fmt: skip
    return read_results(out / "results.jsonl")


def test_a_results_folder_is_one_bench_unless_resumed(tmp_path: Path) -> None:
    ResultsFile(tmp_path / "results.jsonl").append(record(BASELINE, 0, 100.0))
    with pytest.raises(UsageError, match="--resume"):
        tiny_bench(tmp_path)
