"""The results file: typed records round-trip, files of reclab 0.1 (schema 1) still read, other
versions and broken folders are refused in one line naming what is wrong."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from reclab.cli import main
from reclab.errors import ResultsError
from reclab.results.file import ResultsFile, read_folder, read_results
from reclab.results.record import SCHEMA_VERSION
from reclab.run.matrix import BASELINE
from tests.records import failed, record

V1_RESULTS = Path(__file__).parent / "data" / "results-v1.jsonl"


def test_records_round_trip_through_the_file(tmp_path: Path) -> None:
    written = [record(BASELINE, 0, 120.5), failed(BASELINE.with_factor("cache", "none"), 1, "RuntimeError: boom")]
    results = ResultsFile(tmp_path / "results.jsonl")
    for r in written:
        results.append(r)
    assert read_results(results.path) == written
    assert json.loads(results.path.read_text().splitlines()[0])["schema"] == SCHEMA_VERSION


def test_a_results_file_of_schema_1_still_reads_and_reports(tmp_path: Path) -> None:
    shutil.copy(V1_RESULTS, tmp_path / "results.jsonl")
    records = read_folder(tmp_path)
    assert [r.kind for r in records[:2]] == ["ceiling", "warmup"]
    runs = [r for r in records if r.kind == "run"]
    assert {r.config.framework for r in runs} == {"sanic", "tornado"}
    assert all([p.name for p in r.phases] == ["closed"] and r.phases[0].latency_us is not None for r in runs)
    assert {r.config.loop for r in runs} == {"uvloop", "asyncio"}  # schema 1 ran Sanic on uvloop, Tornado on asyncio
    assert all(r.config.delay_ms is None for r in runs)  # and without the delay proxy at 0 ms
    assert {r.role for r in runs} == {"baseline", "variant"}
    assert runs[0].bench.engines.mongo.startswith("mongoeco")
    assert main(["report", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "## Factor: framework" in md and "No A/A calibration" in md


def test_a_results_file_of_another_version_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = json.loads(V1_RESULTS.read_text().splitlines()[0])
    (tmp_path / "results.jsonl").write_text(json.dumps({**line, "schema": 999}) + "\n")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "999" in err and str(SCHEMA_VERSION) in err and str(tmp_path / "results.jsonl") in err


def test_a_missing_folder_or_results_file_is_a_results_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such result folder"):
        read_folder(tmp_path / "absent")
    with pytest.raises(ResultsError, match="no results file"):
        read_folder(tmp_path)
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(ResultsError, match="holds no results"):
        read_folder(tmp_path)


def test_a_torn_last_line_is_ignored_and_a_broken_middle_line_is_not(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(record(BASELINE, 0, 100.0))
    with open(results.path, "a") as handle:
        handle.write('{"schema": 2, "kind": "ru')
    assert len(read_results(results.path)) == 1
    results.path.write_text(results.path.read_text() + "\n" + results.path.read_text().splitlines()[0] + "\n")
    with pytest.raises(ResultsError, match=":2: not a JSON record"):
        read_results(results.path)


def test_bad_flag_combinations_are_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["bench", "--users", "1", "--processes", "2", "--out", str(tmp_path / "a")]) == 2
    assert "--users (1) must be at least --processes (2)" in capsys.readouterr().err
    assert main(["bench", "--repeats", "0", "--out", str(tmp_path / "b")]) == 2
    assert "--repeats 0: must be at least 1" in capsys.readouterr().err
    assert main(["report"]) == 2
    assert "give a result folder" in capsys.readouterr().err


def test_a_line_nested_too_deeply_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(record(BASELINE, 0, 100.0))
    with open(results.path, "a") as handle:
        handle.write("[" * 200_000 + "]" * 200_000 + "\n")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{results.path}:2: not a JSON record (nested too deeply)" in err


@pytest.mark.parametrize("version", ["true", "1.0", '"1"', "null"])
def test_a_schema_version_that_is_not_an_integer_is_refused(tmp_path: Path, version: str) -> None:
    line = V1_RESULTS.read_text().splitlines()[0]
    (tmp_path / "results.jsonl").write_text(re.sub(r'"schema": ?1\b', f'"schema": {version}', line, count=1) + "\n")
    with pytest.raises(ResultsError, match=rf":1: results of schema version {re.escape(version)};"):
        read_results(tmp_path / "results.jsonl")


def test_a_whole_last_line_that_is_not_json_is_refused_not_taken_for_torn(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(record(BASELINE, 0, 100.0))
    with open(results.path, "a") as handle:
        handle.write('{"schema": 2, "kind": "ru\n')  # its newline was written: not torn by a crash
    with pytest.raises(ResultsError, match=":2: not a JSON record"):
        read_results(results.path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--users", "0"], "--users 0: must be at least 1"),
        (["--processes", "-1"], "--processes -1: must be at least 1"),
        (["--delay-ms", "nan"], "--delay-ms nan: must be a number of milliseconds"),
        (["--loadgens", "2", "--loadgen-wait-s", "-1"], "--loadgen-wait-s -1: must be a positive number"),
        (["--loadgens", "2", "--loadgen-master", "127.0.0.1:²"], "give the master as HOST:PORT"),
        (["--out", "{file}"], "cannot create the result folder"),
    ],
)
def test_bad_bench_arguments_are_one_line_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    argv = [arg.format(file=tmp_path / "a-file" / "out") for arg in argv]
    assert main(["bench", *argv, *([] if "--out" in argv else ["--out", str(tmp_path / "out")])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_bad_capacity_numbers_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--slo-p99-ms", "nan"], ["--start-rps", "inf"]):
        assert main(["capacity", *argv, "--out", str(tmp_path)]) == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
