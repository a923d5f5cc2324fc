"""The report on synthetic result sets: verdicts against the baseline (faster, slower, equivalent,
inconclusive), the A/A calibration, claims, flags and failed runs; the nox sessions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from reclab.analysis.findings import analyse
from reclab.analysis.summary import summarise
from reclab.cli import main
from reclab.report.build import build_report
from reclab.report.charts import page_resources
from reclab.results.config import key_slug
from reclab.results.record import RunRecord
from reclab.run.matrix import BASELINE
from tests.records import failed, section, with_errors, write_results
from tests.synthetic import result_set, with_bench

TORNADO = BASELINE.with_factor("framework", "tornado")
TALK_TORNADO = TORNADO.with_factor("loop", "asyncio")
NO_CACHE = BASELINE.with_factor("cache", "none")
MOTOR = BASELINE.with_factor("driver", "motor")
ASYNCIO = BASELINE.with_factor("loop", "asyncio")


@pytest.fixture
def clear_results(tmp_path: Path) -> Path:
    records = result_set({TORNADO: 1.3, TALK_TORNADO: 1.5, NO_CACHE: 8.0, ASYNCIO: 1.0, MOTOR: 1.08}, repeats=6, noise=0.004)
    records[-1] = with_errors(records[-1], {"http_500": 3})
    records.append(failed(NO_CACHE, 6, "RuntimeError: server exited"))
    return write_results(tmp_path, records)


def test_verdicts_against_the_baseline(clear_results: Path) -> None:
    md = build_report(clear_results)[0].read_text()
    framework = section(md, "Factor: framework")
    assert "| framework=tornado |" in framework and "slower" in framework
    assert "framework=tornado, loop=asyncio" in framework
    assert "equivalent within ±10%" in section(md, "Factor: loop")
    cache = section(md, "Factor: cache")
    assert "slower" in cache and "1 failed runs" in cache
    assert "Caveats" not in md  # A/A equivalent, not quick
    assert "equivalent within ±10%" in section(md, "A/A calibration")
    method = section(md, "Method")
    assert "Holm" in method and "6 repeats" in method


def test_frameworks_are_ranked_like_for_like_on_each_loop(clear_results: Path) -> None:
    ranking = section(build_report(clear_results)[0].read_text(), "Frameworks ranked")
    uvloop = next(line for line in ranking.splitlines() if line.startswith("On uvloop:"))
    assert uvloop.index("sanic") < uvloop.index("tornado")  # 1.3x the baseline's CPU per request: ranked after it
    asyncio = next(line for line in ranking.splitlines() if line.startswith("On asyncio:"))
    assert asyncio.index("sanic") < asyncio.index("tornado")  # the loop row and the talk's Tornado, side by side
    assert "cache" not in ranking and "motor" not in ranking  # other switches are not frameworks


def test_claims_as_the_talk_ran_them_and_like_for_like(clear_results: Path) -> None:
    claims = section(build_report(clear_results)[0].read_text(), "The talk's claims vs what this run measured")
    assert "as the talk ran it" in claims and "like for like" in claims
    as_ran = next(line for line in claims.splitlines() if "server CPU per request — as the talk ran it" in line)
    assert "partly: right direction, smaller than claimed" in as_ran  # 1/1.5 = 0.67, not the 0.5 claimed
    assert "not measured in this result set" in claims  # no gather/sequential pair here


def test_an_aa_difference_marks_the_whole_result_set_unreliable(tmp_path: Path) -> None:
    records = result_set({TORNADO: 1.3}, aa_effect=1.12, noise=0.01)
    md = build_report(write_results(tmp_path, records))[0].read_text()
    assert "Unreliable result set" in section(md, "Caveats")


def test_a_quick_run_says_its_verdicts_are_indicative(tmp_path: Path) -> None:
    records = with_bench(result_set({TORNADO: 1.3}, repeats=3), quick=True)
    md = build_report(write_results(tmp_path, records))[0].read_text()
    assert "indicative only" in section(md, "Caveats")


def test_noise_gives_inconclusive_not_a_verdict(tmp_path: Path) -> None:
    findings = analyse(result_set({MOTOR: 1.03}, noise=0.2, seed=5))
    row = next(r for r in findings.variants if r.summary.key == MOTOR.key)
    assert row.verdict is not None and row.verdict.verdict.text == "inconclusive"
    assert row.verdict.detectable is not None and row.verdict.detectable > 0.1


def test_warnings_count_flags_and_list_failed_runs(clear_results: Path) -> None:
    warnings = section(build_report(clear_results)[0].read_text(), "Warnings")
    assert "closed:errors in 1 of" in warnings
    assert "failed: RuntimeError: server exited" in warnings


def test_plots_are_written(clear_results: Path) -> None:
    md, html = (path.read_text() for path in build_report(clear_results))
    assert "<table>" in html and 'src="plots/server_timing.png"' in html and "(plots/capacity.png)" in md
    for chart in ("forest", "server_cpu", "capacity", "latency"):
        assert f'data-chart="{chart}"' in html
    for plot in ("forest.png", "capacity.png", "server_cpu.png", "latency.png", "server_timing.png"):
        assert (clear_results / "plots" / plot).stat().st_size > 1000


def test_summaries_keep_failed_runs_apart(clear_results: Path) -> None:
    from reclab.results.file import read_results

    summaries = summarise(read_results(clear_results / "results.jsonl"))
    no_cache = summaries[NO_CACHE.key]
    assert len(no_cache.runs) == 6 and len(no_cache.failed) == 1
    assert next(iter(summaries.values())).role == "baseline"


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "results.jsonl" in capsys.readouterr().err


def test_the_margin_is_stated_and_used(clear_results: Path) -> None:
    assert main(["report", str(clear_results), "--margin", "0.05"]) == 0
    assert "equivalent within ±5%" in section((clear_results / "report.md").read_text(), "Factor: loop")
    assert main(["report", str(clear_results), "--margin", "2"]) == 2


def test_nox_sessions_are_defined() -> None:
    listed = subprocess.run([sys.executable, "-m", "nox", "--list", "-f", "noxfile.py"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=60)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    for session in ("tests", "lint", "bench", "capacity", "report", "flamegraph", "hotpath", "asv", "microbench", "smoke"):
        assert f"* {session}" in listed.stdout or f"- {session}" in listed.stdout


def saturated_open(record: RunRecord, **fields: object) -> RunRecord:
    phases = [msgspec.structs.replace(p, **fields) if p.name == "open" else p for p in record.phases]
    return msgspec.structs.replace(record, phases=phases)


def test_no_latency_claim_is_judged_on_a_phase_that_saturated(tmp_path: Path) -> None:
    records = result_set({NO_CACHE: 1.5, BASELINE.with_factor("cache", "redis"): 1.02}, repeats=5, noise=0.004)
    records = [saturated_open(r, unfinished=3, errors={"unfinished": 3}) if r.key == NO_CACHE.key and r.repeat == 2 else r
               for r in records]  # fmt: skip
    md = build_report(write_results(tmp_path, records))[0].read_text()
    claims = section(md, "The talk's claims vs what this run measured")
    no_cache = next(line for line in claims.splitlines() if "caching (redis)" in line)
    assert "not judged: `open` was not below saturation" in no_cache and "1 of 5 runs (errors, unfinished requests)" in no_cache
    row = next(line for line in section(md, "Factor: cache").splitlines() if line.startswith("| cache=none"))
    assert "(not judged: not below saturation)" in row
    assert "`open` was not below saturation in 1 of 5 runs" in section(md, "Warnings")


def test_a_latency_phase_offered_near_capacity_is_not_judged(tmp_path: Path) -> None:
    records = result_set({NO_CACHE: 32.0}, repeats=5, noise=0.004)  # capacity 400/32 = 12.5/s, offered 10/s: 80%
    md = build_report(write_results(tmp_path, records))[0].read_text()
    claims = section(md, "The talk's claims vs what this run measured")
    line = next(line for line in claims.splitlines() if "caching (two-level)" in line)
    assert "not judged" in line and "offered rate above 60% of capacity" in line


def test_the_report_shows_the_load_as_offered_and_the_database_work(tmp_path: Path) -> None:
    records = [saturated_open(r, offered_rps=8.0, nominal_rps=10.0, db_docs_per_request=120.0, db_bytes_per_request=6144.0)
               for r in result_set({TORNADO: 1.1}, repeats=3)]  # fmt: skip
    records = [msgspec.structs.replace(r, phases=[msgspec.structs.replace(p, db_docs_per_request=90.0) for p in r.phases])
               if r.role == "baseline" else r for r in records]  # fmt: skip
    md = build_report(write_results(tmp_path, records))[0].read_text()
    assert "| `open` | 10 | 8.00 | – | – | 9 |" in section(md, "Load as offered")
    assert "offered 8 to 8/s in 3 runs, not its nominal 10/s" in section(md, "Warnings")
    work = section(md, "Database work per request")
    assert "| 90.0 |" in work and "| 120.0 |" not in work  # from the closed phase (the cost phase): 90 docs there


HOSTILE = "<script>alert(1)</script> [x](javascript:alert(1)) ![i](javascript:alert(2)) `<b>bold</b>` &lt;"


@pytest.fixture
def hostile_results(tmp_path: Path) -> Path:
    """A result set whose records' strings hold HTML, Markdown links and a 5 MB error."""
    records = with_bench(result_set({TORNADO: 1.3}, repeats=3), versions={"python": HOSTILE})
    huge = failed(NO_CACHE, 0, f"RuntimeError: {HOSTILE} " + "x" * 5_000_000 + " the last words")
    odd_key = msgspec.structs.replace(failed(MOTOR, 0, f"RuntimeError: {HOSTILE}"), key=f"{HOSTILE}`")
    return write_results(tmp_path, [*records, huge, odd_key])


def test_strings_from_records_are_inert_and_cut_in_both_renderings(hostile_results: Path) -> None:
    md_path, html_path = build_report(hostile_results)
    md, page = md_path.read_text(), html_path.read_text()
    for text in (md, page):
        assert "<script>alert" not in text and "</script> [x]" not in text
        assert "x" * 1000 not in text and "the last words" in text  # cut, its length and its end kept
        assert re.search(r"\(5,000,\d{3} characters\)", text)
    assert "\\<script\\>" in md and "`<b>bold</b>`" in md  # escaped, or in a code span, which shows it as it is
    assert not re.search(r"(?<!\\)\]\(javascript", md) and "[x\\](javascript:alert(1))" in md
    assert "&lt;script&gt;" in page and "<code>&lt;b&gt;bold&lt;/b&gt;</code>" in page and 'href="javascript' not in page
    assert len(md) < 100_000 and len(page.replace(page_resources(), "")) < 400_000


def test_markdown_of_hostile_records_renders_no_html_or_link(hostile_results: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    md = build_report(hostile_results)[0].read_text()
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    assert "<script" not in rendered and "<b>" not in rendered and "<img" not in rendered.replace('<img src="plots/', "")
    assert "javascript:" not in "".join(a.split(">")[0] for a in rendered.split("<a ")[1:])  # no link anywhere leads there


def test_flamegraphs_of_the_set_are_linked_from_the_page(clear_results: Path) -> None:
    md, page = (path.read_text() for path in build_report(clear_results))
    assert "## Flamegraphs" not in md  # none taken: no section
    (clear_results / "flamegraphs").mkdir()
    (clear_results / "flamegraphs" / f"{key_slug(TORNADO.key)}.svg").write_text("<svg/>")
    (clear_results / "flamegraphs" / "a__vs__b.diff.svg").write_text("<svg/>")
    md, page = (path.read_text() for path in build_report(clear_results))
    flames = section(md, "Flamegraphs")
    assert f"(flamegraphs/{key_slug(TORNADO.key)}.svg)" in flames and "differential flamegraph, A = a, B = b" in flames
    assert 'href="#flamegraphs"' in page and f'href="flamegraphs/{key_slug(TORNADO.key)}.svg"' in page
