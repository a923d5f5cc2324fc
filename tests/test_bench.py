"""`reclab bench`: spec validation, deterministic streams, a tiny real run on both frameworks, and a
run whose server dies mid-way (recorded as failed, nothing left running)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from reclab.bench import run_bench
from reclab.cli import build_parser
from reclab.results import read_results
from reclab.server_process import RunningServer
from servers.core.rules import load_rules
from tests.conftest import TINY_SPEC
from workloads.dataset import generate
from workloads.spec import load_spec
from workloads.stream import build_stream, check_services
from workloads.tomlcheck import SpecError


def bench_args(out: Path, *extra: str) -> argparse.Namespace:
    """`reclab bench` arguments for a tiny quick run, parsed by the real CLI parser."""
    argv = ["bench", str(TINY_SPEC), "--quick", "--repeats", "1", "--out", str(out), "--no-warmup-run", *extra]
    return build_parser().parse_args(argv)


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
    assert run_bench(bench_args(tmp_path, "--matrix", "frameworks")) == 0
    records = read_results(tmp_path / "results.jsonl")
    assert [r["kind"] for r in records] == ["ceiling", "run", "run"]
    runs = records[1:]
    assert {r["config"]["framework"] for r in runs} == {"sanic", "tornado"}
    for record in runs:
        assert record["status"] == "ok", record.get("error")
        assert record["throughput_rps"] > 0 and record["requests_ok"] > 0
        lat = record["latency_us"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
        assert HdrHistogram.decode(record["hdr"]).get_total_count() == record["requests_ok"]
        assert record["stream_hash"] == runs[0]["stream_hash"] and record["dataset_hash"]
        assert record["cpu_s"]["server"] > 0 and "generator" in record["cpu_s"] and "mongo" in record["cpu_s"]
        assert record["db_ops_per_request"] > 0 and record["db_round_trips_per_request"] > 0
        assert 0 <= record["cache_hit_ratio"] <= 1
        assert record["versions"]["sanic"] and record["commit"] and record["machine"]["cores"]
        assert record["error_count"] == 0 and "errors" not in record["flags"]
    assert [r["sequence"] for r in runs] == [0, 1]


@pytest.mark.slow
def test_a_run_whose_server_dies_is_recorded_as_failed_and_the_matrix_goes_on(tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_first_server_soon(server: RunningServer) -> None:
        if not killed:
            killed.append(server.child.pid)
            threading.Timer(1.0, os.kill, (server.child.pid, signal.SIGKILL)).start()

    assert run_bench(bench_args(tmp_path, "--matrix", "frameworks", "--no-ceiling"), on_server=kill_first_server_soon) == 3
    records = read_results(tmp_path / "results.jsonl")
    assert [r["status"] for r in records] == ["failed", "ok"]
    assert "server exited" in records[0]["error"] and "failed" in records[0]["flags"]
    # no_leftover_processes (conftest) checks that nothing the bench started is still running.


def test_resume_skips_finished_runs(tmp_path: Path) -> None:
    from reclab.results import ResultsFile, run_key

    results = ResultsFile(tmp_path / "results.jsonl")
    results.append({"kind": "run", "key": "a", "repeat": 0, "status": "ok"})
    results.append({"kind": "run", "key": "b", "repeat": 0, "status": "failed"})
    assert results.finished_keys() == {run_key({"kind": "run", "key": "a", "repeat": 0})}


@pytest.mark.slow
def test_an_open_loop_run_counts_requests_due_in_the_window(tmp_path: Path) -> None:
    spec = tmp_path / "open.toml"
    spec.write_text(TINY_SPEC.read_text().replace('mode = "closed"', 'mode = "open"\nrate = 80'))
    args = build_parser().parse_args(
        ["bench", str(spec), "--quick", "--repeats", "1", "--out", str(tmp_path / "out"), "--no-ceiling", "--no-warmup-run",
         "--matrix", "frameworks"]
    )  # fmt: skip
    assert run_bench(args) == 0
    runs = read_results(tmp_path / "out" / "results.jsonl")
    assert len(runs) == 2
    for record in runs:
        assert record["status"] == "ok", record.get("error")
        assert record["load"]["mode"] == "open"
        # Every request due in the window is either answered (ok), failed (errors) or still unanswered.
        assert record["requests_sent"] == record["requests_ok"] + record["error_count"] + record["unfinished"]
        assert record["throughput_rps"] == pytest.approx(80, rel=0.5)


def test_a_results_folder_is_one_bench_unless_resumed(tmp_path: Path) -> None:
    from reclab.results import ResultsFile

    ResultsFile(tmp_path / "results.jsonl").append({"kind": "run", "key": "a", "repeat": 0, "status": "ok"})
    with pytest.raises(SpecError, match="--resume"):
        run_bench(bench_args(tmp_path))
