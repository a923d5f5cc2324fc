"""The results file: typed records round-trip with their bench described once per bench, files of
schema 2 (the bench in every line) and of reclab 0.1 (schema 1) still read, other versions, broken
folders, records without their bench's description and fields that do not fit a record's kind are
refused in one line naming what is wrong."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest

from reclab.cli import main
from reclab.errors import ResultsError
from reclab.results.file import ResultsFile, read_folder, read_results
from reclab.results.record import SCHEMA_VERSION, BenchInfo, CapacityResult, CapacityStep, RunRecord, Warmup
from reclab.run.matrix import BASELINE
from tests.records import BENCH, failed, phase, record

V1_RESULTS = Path(__file__).parent / "data" / "results-v1.jsonl"


def test_records_round_trip_through_the_file(tmp_path: Path) -> None:
    written = [record(BASELINE, 0, 120.5), failed(BASELINE.with_factor("cache", "none"), 1, "RuntimeError: boom")]
    results = ResultsFile(tmp_path / "results.jsonl")
    for r in written:
        results.append(r)
    assert read_results(results.path) == written
    lines = [json.loads(line) for line in results.path.read_text().splitlines()]
    assert [(line["schema"], line["kind"]) for line in lines] == [(SCHEMA_VERSION, "bench"), (3, "run"), (3, "run")]
    assert lines[0]["bench_id"] == "test" and [line["bench"] for line in lines[1:]] == ["test", "test"]


def quick_run(info: BenchInfo = BENCH) -> list[RunRecord]:
    """The records of a quick bench: the generator's ceiling, the services' warm-up and 35 runs."""
    ceiling = RunRecord(kind="ceiling", key="ceiling", config=BASELINE.with_factor("cache", "none"), route="/health",
                        bench=info, phases=[phase("capacity", 900.0)])  # fmt: skip
    warmup = RunRecord(kind="warmup", key=BASELINE.key, config=BASELINE, bench=info, warmup=Warmup(requests=10, ok=10))
    runs = [record(BASELINE, repeat, 100.0 + order, order=order, bench=info) for repeat in range(5) for order in range(7)]
    return [ceiling, warmup, *runs]


def bench_lines(path: Path) -> list[dict[str, object]]:
    return [line for line in map(json.loads, path.read_text().splitlines()) if line["kind"] == "bench"]


def test_a_quick_run_holds_its_bench_description_once(tmp_path: Path) -> None:
    written = quick_run()
    results = ResultsFile(tmp_path / "results.jsonl")
    for r in written:
        results.append(r)
    lines = results.path.read_text().splitlines()
    assert len(written) == 37 and len(lines) == 38
    assert bench_lines(results.path) == [{"schema": SCHEMA_VERSION, "kind": "bench", **json.loads(msgspec.json.encode(BENCH))}]
    assert sum('"commit":"abc"' in line for line in lines) == 1  # the bench's facts are in its description only
    records = read_results(results.path)
    assert records == written and all(r.bench is records[0].bench for r in records)


def test_a_resumed_bench_is_described_once_and_another_bench_again(tmp_path: Path) -> None:
    first, *rest = quick_run()
    ResultsFile(tmp_path / "results.jsonl").append(first)
    resumed = ResultsFile(tmp_path / "results.jsonl")  # another process, on the file as the first one left it
    for r in rest:
        resumed.append(r)
    assert len(bench_lines(resumed.path)) == 1
    other = msgspec.structs.replace(BENCH, bench_id="other", commit="def")
    changed = msgspec.structs.replace(BENCH, load=replace(BENCH.load, users=8))  # its load changed within the bench
    later = [record(BASELINE, 5, 90.0, bench=other), record(BASELINE, 6, 90.0, bench=changed), record(BASELINE, 7, 80.0)]
    for r in later:
        resumed.append(r)
    assert [line["bench_id"] for line in bench_lines(resumed.path)] == ["test", "other", "test", "test"]
    records = read_results(resumed.path)
    assert records == [first, *rest, *later]  # each record with the latest description of its bench above it
    assert [r.bench.load.users for r in records[-3:]] == [4, 8, 4]


def test_lines_of_schema_2_still_read_and_a_bench_goes_on_after_them(tmp_path: Path) -> None:
    older = [msgspec.structs.replace(r, schema=2) for r in quick_run()[:3]]
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in older))  # the bench inline in every line
    assert read_results(path) == older
    resumed = record(BASELINE, 1, 110.0)
    ResultsFile(path).append(resumed)
    assert len(bench_lines(path)) == 1 and read_results(path) == [*older, resumed]


def test_a_record_without_its_bench_description_is_refused_in_one_line(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(record(BASELINE, 0, 100.0))
    lines = results.path.read_text().splitlines()
    results.path.write_text(lines[1] + "\n" + lines[0] + "\n")  # described only below it
    with pytest.raises(ResultsError) as refused:
        read_results(results.path)
    assert str(refused.value) == (
        f'{results.path}:1: its bench "test" has no description above it '
        f'(a line {{"schema": 3, "kind": "bench", "bench_id": "test", ...}})'
    )
    results.path.write_text(lines[0].replace('"repeats":5', '"repeats":"five"') + "\n" + lines[1] + "\n")
    with pytest.raises(ResultsError, match=r":1: not a valid bench description \(Expected `int`, got `str` - at `\$.repeats`\)"):
        read_results(results.path)


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("run", {"route": "/health"}, "`route` does not fit a record of kind 'run' (only ceiling records have one)"),
        ("ceiling", {"step": {"rate": 10.0, "stage": "grow", "passed": True, "slo_p99_ms": 50.0, "max_error_rate": 0.01}},
         "`step` does not fit a record of kind 'ceiling' (only capacity_step records have one)"),
        ("capacity", {"capacity": {"capacity_rps": 10.0, "confirmed": True, "above_rps": 12.5, "slo_p99_ms": 50.0,
                                   "max_error_rate": 0.01}},
         "`phases` does not fit a record of kind 'capacity'"),
        ("capacity_step", {}, "a record of kind 'capacity_step' needs `step`"),
        ("cost", {}, "kind 'cost' is none of run, warmup, ceiling, target, capacity_step, capacity"),
    ],
)  # fmt: skip
def test_a_field_that_does_not_fit_the_records_kind_is_refused_in_one_line(
    tmp_path: Path, kind: str, fields: dict[str, object], message: str
) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(record(BASELINE, 0, 100.0))
    line = {**json.loads(results.path.read_text().splitlines()[1]), "kind": kind, **fields}
    with open(results.path, "a") as handle:
        handle.write(json.dumps(line) + "\n")
    with pytest.raises(ResultsError) as refused:
        read_results(results.path)
    assert str(refused.value).startswith(f"{results.path}:3: not a valid run record (") and message in str(refused.value)


def test_a_record_that_does_not_fit_its_kind_is_not_made_nor_appended(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="`capacity` does not fit a record of kind 'run'"):
        msgspec.structs.replace(record(BASELINE, 0, 100.0), capacity=CapacityResult(
            capacity_rps=10.0, confirmed=True, above_rps=12.5, slo_p99_ms=50.0, max_error_rate=0.01))  # fmt: skip
    step = RunRecord(kind="capacity_step", key=BASELINE.key, config=BASELINE, bench=BENCH)  # built, then completed
    with pytest.raises(ValueError, match="needs `step`"):
        ResultsFile(tmp_path / "results.jsonl").append(step)
    done = msgspec.structs.replace(step, step=CapacityStep(rate=10.0, stage="grow", passed=True, slo_p99_ms=50.0,
                                                           max_error_rate=0.01))  # fmt: skip
    ResultsFile(tmp_path / "results.jsonl").append(done)
    assert read_results(tmp_path / "results.jsonl") == [done]


def test_a_torn_description_is_set_aside_and_written_again(tmp_path: Path) -> None:
    results = ResultsFile(tmp_path / "results.jsonl")
    results.append(record(BASELINE, 0, 100.0))
    description = results.path.read_text().splitlines()[0]
    with open(results.path, "a") as handle:
        handle.write(description.replace('"bench_id":"test"', '"bench_id":"next"')[:200])  # a crash mid-write
    assert len(read_results(results.path)) == 1
    assert results.set_aside_torn_line() is not None
    after = record(BASELINE, 1, 100.0, bench=msgspec.structs.replace(BENCH, bench_id="next"))
    results.append(after)
    assert read_results(results.path)[1] == after and [line["bench_id"] for line in bench_lines(results.path)] == ["test", "next"]


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
    with pytest.raises(ResultsError, match=":3: not a JSON record"):  # after the bench's line and the record's
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
    assert len(err.splitlines()) == 1 and f"{results.path}:3: not a JSON record (nested too deeply)" in err


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
    with pytest.raises(ResultsError, match=":3: not a JSON record"):
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
