"""`reclab report --index DIR` on result sets made by hand, nested at any depth: each set listed newest
first with its matrix, quick or full, repeats, A/A, verdicts counted (or its kind's own summary), failed
runs and relative links that exist; a broken or empty set listed with its error; the page of
`reclab report --compare OLD NEW` written into NEW and linked; strings from records escaped."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

import msgspec
import pytest

from reclab.cli import main
from reclab.results.file import ResultsFile
from reclab.results.record import CapacityResult, FaultRecord, RunRecord
from reclab.run.matrix import BASELINE
from tests.records import BENCH, failed, record
from tests.synthetic import result_set, with_bench
from tests.test_overload_matrix import _bench as overload_bench
from tests.test_overload_matrix import _capacity as overload_capacity
from tests.test_overload_matrix import _runs as overload_runs

TORNADO = BASELINE.with_factor("framework", "tornado")
NO_CACHE = BASELINE.with_factor("cache", "none")
ASYNCIO = BASELINE.with_factor("loop", "asyncio")
MOTOR = BASELINE.with_factor("driver", "motor")
EFFECTS = {TORNADO: 1.3, NO_CACHE: 8.0, ASYNCIO: 1.0, MOTOR: 0.7}  # slower, slower, equivalent, faster
HOSTILE = "<script>alert(1)</script> [x](javascript:alert(1)) `<b>bold</b>` &lt;"
HOSTILE_FOLDER = "<img src=x onerror=alert(1)>"
DAY = 86_400.0
T0 = 1_700_000_000.0  # 2023-11-14 22:13 UTC


def write(folder: Path, records: list[RunRecord]) -> Path:
    results = ResultsFile(folder / "results.jsonl")
    for r in records:
        results.append(r)
    return folder


def started(records: list[RunRecord], at: float) -> list[RunRecord]:
    return [msgspec.structs.replace(r, started_at=at + i) for i, r in enumerate(records)]


def faults_set() -> list[RunRecord]:
    bench = msgspec.structs.replace(BENCH, matrix="faults", repeats=1)
    out = []
    for order, (fault, lost) in enumerate(((None, 0), ("mongo-stall", 2), ("redis-down", 0))):
        config = msgspec.structs.replace(BASELINE, fault=fault)
        r = record(config, 0, 100.0, order=order, bench=bench)
        x = FaultRecord(name=fault, start_s=1.5, end_s=3.5, sent=30, answered=30 - lost, lost=lost) if fault else None
        out.append(msgspec.structs.replace(r, fault=x))
    return out


def capacity_set() -> list[RunRecord]:
    bench = msgspec.structs.replace(BENCH, matrix="capacity", repeats=1)
    out = []
    for role, config, rps in (("baseline", BASELINE, 420.0), ("variant", TORNADO, 300.0)):
        result = CapacityResult(capacity_rps=rps, confirmed=True, above_rps=rps * 1.25, steps=7, slo_p99_ms=100.0,
                                max_error_rate=0.001)  # fmt: skip
        out.append(RunRecord(kind="capacity", key=config.key, role=role, config=config, bench=bench, capacity=result))
    return out


def target_set() -> list[RunRecord]:
    bench = msgspec.structs.replace(BENCH, target="http://127.0.0.1:8000", repeats=3)
    runs = [msgspec.structs.replace(record(BASELINE, repeat, 100.0, bench=bench), kind="target") for repeat in range(3)]
    return [*runs[:2], msgspec.structs.replace(runs[2], status="failed", error="ConnectionError", phases=[])]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reports/ with result sets at several depths, a link naming the newest, a comparison, a broken and an empty set."""
    root = tmp_path_factory.mktemp("reports")
    old = write(root / "2023" / "bench-old", started([*result_set(EFFECTS, repeats=6, noise=0.004),
                                                      failed(NO_CACHE, 6, "RuntimeError: server exited")], T0))  # fmt: skip
    (old / "index.html").write_text("<p>its report</p>")  # `reclab report` would write it; no plots needed here
    new = write(
        root / "2023" / "nested" / "deeper" / "bench-new", started(result_set(EFFECTS, repeats=6, noise=0.004, seed=2), T0 + DAY)
    )
    quick = with_bench(result_set(EFFECTS, repeats=3, aa_effect=1.4, seed=3), quick=True, repeats=3)
    write(root / "bench-quick", started(quick, T0 + 2 * DAY))
    write(root / "faults", started(faults_set(), T0 + 3 * DAY))
    write(root / "capacity", started(capacity_set(), T0 + 4 * DAY))
    write(root / "target", started(target_set(), T0 + 5 * DAY))
    bench = overload_bench(quick=True)
    write(root / "overload", started([overload_capacity(bench), *overload_runs(bench, 2)], T0 + 6 * DAY))
    hostile = with_bench(result_set({TORNADO: 1.3}, repeats=3), commit=HOSTILE, matrix=HOSTILE)
    (write(root / HOSTILE_FOLDER, started(hostile, T0 + 7 * DAY)) / "index.html").write_text("<p>its report</p>")
    (root / "broken").mkdir()
    (root / "broken" / "results.jsonl").write_text('{"schema": 2, "kind": "run"}\nnot json\n{}\n')
    (root / "empty").mkdir()
    (root / "empty" / "results.jsonl").write_text("")
    for at, name in ((T0 - DAY, "broken"), (T0 - 2 * DAY, "empty")):  # placed by their file's time: oldest here
        os.utime(root / name / "results.jsonl", (at, at))
    (root / "latest").symlink_to(new.relative_to(root))
    (root / "plots").mkdir()  # a folder without results is not a set
    assert main(["report", "--compare", str(old), str(root / "latest")]) == 0
    assert main(["report", "--index", str(root)]) == 0
    return root


def table(md: str) -> dict[str, dict[str, str]]:
    """The index's table as {folder: {header: cell}} (cells as Markdown)."""
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    split = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    headers, rows = split[0], split[1:]
    return {row[1].split(" (")[0]: dict(zip(headers, row, strict=True)) for row in rows}


def test_every_set_below_the_folder_is_listed_once_newest_first(lab: Path) -> None:
    rows = table((lab / "index.md").read_text())
    assert list(rows) == [
        "\\<img src=x onerror=alert(1)\\>", "overload", "target", "capacity", "faults", "bench-quick",
        "2023/nested/deeper/bench-new", "2023/bench-old", "broken", "empty",
    ]  # fmt: skip
    new = rows["2023/nested/deeper/bench-new"]
    assert new["folder"] == "2023/nested/deeper/bench-new (latest)"  # the link names it; it is not listed twice
    assert new["started (UTC)"] == "2023-11-15 22:13"


def test_each_set_shows_its_matrix_run_repeats_aa_and_verdicts(lab: Path) -> None:
    rows = table((lab / "index.md").read_text())
    old = rows["2023/bench-old"]
    assert (old["commit"], old["matrix"], old["run"], old["repeats"], old["A/A"]) == ("abc", "ofat", "full", "6", "equivalent")
    assert old["verdicts"] == "1 faster, 2 slower, 1 equivalent" and old["failed runs"] == "1"
    quick = rows["bench-quick"]
    assert (quick["run"], quick["repeats"], quick["failed runs"]) == ("quick", "3", "0")
    assert quick["A/A"].startswith("unreliable (")
    assert rows["2023/nested/deeper/bench-new"]["verdicts"] == "1 faster, 2 slower, 1 equivalent"


def test_every_kind_has_its_own_summary(lab: Path) -> None:
    rows = table((lab / "index.md").read_text())
    assert rows["faults"]["matrix"] == "faults" and rows["faults"]["verdicts"] == "2 request(s) lost in 2 of 2 fault runs"
    assert rows["capacity"]["matrix"] == "capacity"
    assert rows["capacity"]["verdicts"] == "capacity: 2 searches ended, 2 confirmed; baseline 420/s"
    target = rows["target"]
    assert (target["matrix"], target["verdicts"], target["failed runs"], target["repeats"]) == (
        "target", "target: 2 of 3 repeats measured", "1", "2 of 3")  # fmt: skip
    overload = rows["overload"]
    assert overload["matrix"] == "overload" and overload["A/A"] == "none"
    assert "holds" in overload["verdicts"] and "collapses" in overload["verdicts"]


def test_an_unreadable_or_empty_set_is_listed_with_its_error(lab: Path) -> None:
    rows = table((lab / "index.md").read_text())
    assert rows["broken"]["verdicts"].startswith("not read: ") and "results.jsonl:1" in rows["broken"]["verdicts"]
    assert "holds no results" in rows["empty"]["verdicts"]
    assert "2 result set(s) could not be read or analysed" in (lab / "index.md").read_text()


def test_links_are_relative_and_lead_to_pages_that_exist(lab: Path) -> None:
    page = (lab / "index.html").read_text()
    links = [unquote(href) for href in re.findall(r'href="([^"]+)"', page)]
    assert "2023/bench-old/index.html" in links
    assert "2023/nested/deeper/bench-new/comparisons/vs-bench-old.html" in links
    for link in links:
        assert not link.startswith("/") and (lab / link).is_file(), link
    md = table((lab / "index.md").read_text())
    assert md["2023/bench-old"]["report"] == "[report](2023/bench-old/index.html)"
    assert md["faults"]["report"] == f"none: run `reclab report {lab}/faults`"


def test_the_index_writes_nothing_into_the_sets(lab: Path) -> None:
    assert sorted(p.name for p in (lab / "faults").iterdir()) == ["results.jsonl"]
    assert sorted(p.name for p in (lab / "2023" / "bench-old").iterdir()) == ["index.html", "results.jsonl"]


def test_the_comparison_page_is_written_into_new_and_linked_from_its_row(lab: Path) -> None:
    folder = lab / "2023" / "nested" / "deeper" / "bench-new" / "comparisons"
    page, md = (folder / "vs-bench-old.html").read_text(), (folder / "vs-bench-old.md").read_text()
    assert "**Passed**: no regression beyond 5% in 4 variant(s)." in md
    assert "| OLD |" in md and "| NEW |" in md and "bench-old" in md and "latest (bench-new)" in md
    assert TORNADO.key in md and "2023-11-14 22:13" in md and "2023-11-15 22:13" in md
    assert 'href="../../../../bench-old/index.html"' in page  # OLD's report, relative to the page
    index = (lab / "index.md").read_text()
    assert "2023/nested/deeper/bench-new: compared with bench-old: passed (4 variant(s)) (threshold 5%)" in index


def test_a_failing_gate_keeps_its_exit_code_and_says_so_on_its_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path / "old", result_set(EFFECTS, seed=1))
    new = write(tmp_path / "new", result_set({**EFFECTS, TORNADO: 1.3 * 1.2}, seed=2))
    assert main(["report", "--compare", str(old), str(new)]) == 1
    assert f"comparison: {(new / 'comparisons' / 'vs-old.html').resolve()}" in capsys.readouterr().out
    md = (new / "comparisons" / "vs-old.md").read_text()
    assert "**Failed**: 1 of 4 variant(s) failed the gate" in md and "FAILED:" in md
    assert main(["report", "--index", str(tmp_path)]) == 0
    assert "new: compared with old: 1 of 4 variant(s) failed the gate" in (tmp_path / "index.md").read_text()


def test_strings_from_records_and_folder_names_are_inert(lab: Path) -> None:
    md, page = (lab / "index.md").read_text(), (lab / "index.html").read_text()
    assert "<script" not in page and "<img" not in page and 'href="javascript' not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'href="%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/index.html"' in page  # its report, the path quoted
    assert "\\<script\\>" in md and "\\<img src=x onerror=alert(1)\\>" in md
    assert not re.search(r"(?<!\\)\]\(javascript", md)
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    assert "<script" not in rendered and "<img" not in rendered and "<b>" not in rendered
    assert "javascript:" not in "".join(a.split(">")[0] for a in rendered.split("<a ")[1:])


def test_index_refuses_a_result_set_itself_and_two_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write(tmp_path / "set", result_set({TORNADO: 1.3}, repeats=3))
    assert main(["report", "--index", str(folder)]) == 2
    assert "is a result set" in capsys.readouterr().err
    assert not (folder / "index.html").exists()
    assert main(["report", str(folder), "--index", str(tmp_path)]) == 2
    assert "give one of" in capsys.readouterr().err


def test_an_index_of_a_folder_without_sets_says_so(tmp_path: Path) -> None:
    assert main(["report", "--index", str(tmp_path)]) == 0
    assert "No result set" in (tmp_path / "index.md").read_text()
