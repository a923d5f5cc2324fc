"""The report builder on a small fixed results file: tables, ratios and intervals, flagged runs;
`--compare` exit codes; the nox sessions."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from reclab.analysis.stats import paired_ratio, t_quantile
from reclab.analysis.summary import summarise
from reclab.cli import main
from reclab.report.build import build_report
from reclab.results.file import ResultsFile, read_results
from reclab.results.record import RunRecord
from reclab.run.matrix import BASELINE
from tests.records import failed, record, with_flags

TORNADO = BASELINE.with_factor("framework", "tornado")
NO_CACHE = BASELINE.with_factor("cache", "none")


def write_results(folder: Path, records: list[RunRecord]) -> None:
    results = ResultsFile(folder / "results.jsonl")
    for r in records:
        results.append(r)


@pytest.fixture
def fixed_results(tmp_path: Path) -> Path:
    records = []
    for repeat, base in enumerate((100.0, 110.0, 90.0)):
        records.append(record(BASELINE, repeat, base, order=0))
        records.append(record(TORNADO, repeat, base * (1.1, 0.9, 1.0)[repeat], order=1))  # no significant difference
        records.append(record(NO_CACHE, repeat, base / 4, p50_ms=40.0, order=2))  # 4x slower, exactly
    records[-1] = with_flags(records[-1], ["errors"], {"http_500": 3})
    records.append(failed(NO_CACHE, 3, "RuntimeError: server exited", order=2))
    write_results(tmp_path, records)
    return tmp_path


def test_paired_ratio_and_its_interval() -> None:
    exact = paired_ratio({0: 200.0, 1: 220.0, 2: 180.0}, {0: 100.0, 1: 110.0, 2: 90.0})
    assert exact is not None and exact.value == pytest.approx(2.0) and exact.low == pytest.approx(2.0)
    noisy = paired_ratio({0: 110.0, 1: 99.0, 2: 90.0}, {0: 100.0, 1: 110.0, 2: 90.0})
    assert noisy is not None and noisy.low is not None and noisy.high is not None
    logs = [math.log(1.1), math.log(0.9), 0.0]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    assert noisy.high == pytest.approx(math.exp(mean + t_quantile(2) * sd / math.sqrt(3)))
    assert noisy.low < 1 < noisy.high
    assert paired_ratio({0: 5.0}, {0: 10.0}).has_interval is False  # type: ignore[union-attr]


def test_report_tables_ratios_verdicts_and_warnings(fixed_results: Path) -> None:
    md_path, html_path = build_report(fixed_results)
    md = md_path.read_text()
    assert "## Factor: framework" in md and "## Factor: cache" in md
    framework_rows = md.split("## Factor: framework")[1].split("## ")[0]
    assert "| framework=tornado |" in framework_rows and "no significant difference" in framework_rows
    cache_rows = md.split("## Factor: cache")[1].split("## ")[0]
    assert "0.25 [0.25, 0.25]" in cache_rows and "slower" in cache_rows
    assert "1 failed runs" in cache_rows
    warnings = md.split("## Warnings")[1]
    assert "errors" in warnings and "http_500 x3" in warnings
    assert "failed: RuntimeError: server exited" in warnings
    assert (
        "caching (two-level) makes the server faster than no cache | two-level / none req/s: 4.00 [4.00, 4.00] | supported" in md
    )
    assert "mongoeco (embedded)" in md and "not MongoDB" in md
    html = html_path.read_text()
    assert "<table>" in html and 'src="plots/throughput.png"' in html
    for plot in ("throughput.png", "latency.png", "server_timing.png"):
        assert (fixed_results / "plots" / plot).stat().st_size > 1000


def test_summaries_keep_failed_runs_apart(fixed_results: Path) -> None:
    summaries = summarise(read_results(fixed_results / "results.jsonl"))
    no_cache = next(s for s in summaries.values() if s.config.cache == "none")
    assert len(no_cache.runs) == 3 and len(no_cache.failed) == 1


def test_compare_exits_non_zero_only_on_a_significant_regression(tmp_path: Path) -> None:
    old, same, worse = tmp_path / "old", tmp_path / "same", tmp_path / "worse"
    write_results(old, [record(BASELINE, r, v) for r, v in enumerate((100.0, 102.0, 98.0))])
    write_results(same, [record(BASELINE, r, v) for r, v in enumerate((101.0, 99.0, 100.0))])
    write_results(worse, [record(BASELINE, r, v) for r, v in enumerate((80.0, 81.0, 79.0))])
    assert main(["report", "--compare", str(old), str(same)]) == 0
    assert main(["report", "--compare", str(old), str(worse)]) == 1
    assert main(["report", "--compare", str(old), str(tmp_path / "absent")]) == 2


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "results.jsonl" in capsys.readouterr().err


def test_nox_sessions_are_defined() -> None:
    listed = subprocess.run([sys.executable, "-m", "nox", "--list", "-f", "noxfile.py"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=60)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    for session in ("tests", "lint", "bench", "report", "flamegraph", "asv", "microbench", "smoke"):
        assert f"* {session}" in listed.stdout or f"- {session}" in listed.stdout
