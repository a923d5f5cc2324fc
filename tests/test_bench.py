"""`reclab bench`: spec validation, deterministic streams, a tiny real run on both frameworks, and a
run whose server dies mid-way (recorded as failed, nothing left running)."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from reclab.commands.bench import bench
from reclab.errors import UsageError
from reclab.results.file import ResultsFile, read_results
from reclab.run.matrix import BASELINE
from reclab.run.server import RunningServer
from servers.core.rules import DEFAULT_RULES, load_rules
from servers.core.tomlcheck import SpecError
from tests.conftest import TINY_SPEC
from tests.records import failed, record
from workloads.dataset import generate
from workloads.spec import load_spec
from workloads.stream import build_stream, check_services


def tiny_bench(out: Path, spec: Path = TINY_SPEC, **options: object) -> int:
    """`reclab bench` of a tiny quick run, one repeat, no services warm-up run."""
    return bench(spec=spec, rules=DEFAULT_RULES, quick=True, repeats=1, out=out, no_warmup_run=True, **options)  # type: ignore[arg-type]


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


@pytest.mark.slow
def test_a_tiny_real_run_writes_well_formed_result_lines(tmp_path: Path) -> None:
    assert tiny_bench(tmp_path, matrix="frameworks") == 0
    records = read_results(tmp_path / "results.jsonl")
    assert [r.kind for r in records] == ["ceiling", "run", "run"]
    runs = records[1:]
    assert {r.config.framework for r in runs} == {"sanic", "tornado"}
    for run in runs:
        assert run.status == "ok", run.error
        m = run.measured
        assert m is not None and m.throughput_rps > 0 and m.requests_ok > 0
        lat = m.latency_us
        assert lat is not None and 0 < lat.p50 <= lat.p90 <= lat.p99 <= lat.p99_9 <= lat.max
        assert HdrHistogram.decode(m.hdr).get_total_count() == m.requests_ok
        assert run.bench.stream_hash == runs[0].bench.stream_hash and run.bench.dataset_hash
        assert m.cpu_s["server"] > 0 and "generator" in m.cpu_s and "mongo" in m.cpu_s
        assert m.db_ops_per_request > 0 and m.db_round_trips_per_request > 0
        assert m.cache_hit_ratio is not None and 0 <= m.cache_hit_ratio <= 1
        assert run.bench.versions["sanic"] and run.bench.commit and run.bench.machine["cores"]
        assert m.error_count == 0 and "errors" not in run.flags
    assert [r.sequence for r in runs] == [0, 1]


@pytest.mark.slow
def test_a_run_whose_server_dies_is_recorded_as_failed_and_the_matrix_goes_on(tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_first_server_soon(server: RunningServer) -> None:
        if not killed:
            killed.append(server.child.pid)
            threading.Timer(1.0, os.kill, (server.child.pid, signal.SIGKILL)).start()

    assert tiny_bench(tmp_path, matrix="frameworks", no_ceiling=True, on_server=kill_first_server_soon) == 3
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


@pytest.mark.slow
def test_an_open_loop_run_counts_requests_due_in_the_window(tmp_path: Path) -> None:
    spec = tmp_path / "open.toml"
    spec.write_text(TINY_SPEC.read_text().replace('mode = "closed"', 'mode = "open"\nrate = 80'))
    assert tiny_bench(tmp_path / "out", spec, matrix="frameworks", no_ceiling=True) == 0
    runs = read_results(tmp_path / "out" / "results.jsonl")
    assert len(runs) == 2
    for run in runs:
        assert run.status == "ok", run.error
        assert run.bench.load.mode == "open"
        m = run.measured
        assert m is not None
        # Every request due in the window is either answered (ok), failed (errors) or still unanswered.
        assert m.requests_sent == m.requests_ok + m.error_count + m.unfinished
        assert m.throughput_rps == pytest.approx(80, rel=0.5)


def test_a_results_folder_is_one_bench_unless_resumed(tmp_path: Path) -> None:
    ResultsFile(tmp_path / "results.jsonl").append(record(BASELINE, 0, 100.0))
    with pytest.raises(UsageError, match="--resume"):
        tiny_bench(tmp_path)
