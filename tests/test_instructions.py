"""Server instructions per request (`reclab bench --measure instructions`): a tiny real count under
valgrind (skipped where valgrind is not installed), what the flags refuse, the replay client that
sends a window's requests, and the server switch that keeps wall-clock work out of the count."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from reclab.commands.bench import BenchArgs, bench
from reclab.errors import UsageError
from reclab.load.replay import replay, stream_slice
from reclab.report.build import build_report
from reclab.results.file import ResultsFile, read_results
from reclab.run import callgrind
from reclab.run.loop import RunLoop
from reclab.run.matrix import BASELINE
from reclab.run.workload import prepare_workload
from servers.core.rules import DEFAULT_RULES, load_rules
from servers.serving import parse_server_args
from tests.conftest import PATIENT, TINY_SPEC
from tests.records import record
from workloads.writes import write_entry

needs_valgrind = pytest.mark.skipif(
    callgrind.shutil.which("valgrind") is None or callgrind.shutil.which("vgdb") is None, reason="valgrind is not installed"
)
WINDOW = 5


@needs_valgrind
def test_a_tiny_instruction_bench_counts_every_server_process_over_its_window_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = BenchArgs(spec=TINY_SPEC, quick=True, repeats=1, out=out, limits=PATIENT, measure="instructions",
                     window_requests=WINDOW, frameworks=("aiohttp",))  # fmt: skip
    assert bench(args) == 0
    records = read_results(out / "results.jsonl")
    runs = [r for r in records if r.kind == "run"]
    assert [r.config.stack for r in runs] == ["aiohttp"]  # the ofat matrix's one aiohttp variant: one run, to keep CI short
    assert not [r for r in records if r.kind in ("ceiling", "warmup")]  # timed things, left out of a count-only bench
    assert runs[0].bench.measure == "instructions" and runs[0].bench.window_requests == WINDOW
    for run in runs:
        assert run.ok and run.phases == [], run.error
        counted = run.instructions
        assert counted is not None and counted.requests == WINDOW and counted.errors == 0
        assert len(counted.processes) >= 2 and all(n > 0 for n in counted.processes.values())  # our master and its worker
        assert sum(counted.processes.values()) == counted.total
        # Start-up alone runs billions of instructions: a window of a few requests counted without it stays far below.
        assert 1e5 < counted.total < 2e9
        assert "callgrind" in counted.tool
    report, _ = build_report(out)
    assert "What instructions leave out" in report.read_text()


def test_counting_is_refused_where_it_cannot_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError, match="judges behaviour over time"):
        bench(BenchArgs(spec=TINY_SPEC, out=tmp_path / "a", measure="instructions", matrix="faults"))
    with pytest.raises(UsageError, match="--window-requests applies"):
        bench(BenchArgs(spec=TINY_SPEC, out=tmp_path / "b", window_requests=10))
    with pytest.raises(UsageError, match="--measure"):
        bench(BenchArgs(spec=TINY_SPEC, out=tmp_path / "c", measure="cycles"))
    monkeypatch.setattr(callgrind.shutil, "which", lambda tool: None)
    with pytest.raises(UsageError, match="needs valgrind"):
        bench(BenchArgs(spec=TINY_SPEC, out=tmp_path / "d", measure="both"))
    assert not any((tmp_path / name).exists() for name in "abcd")  # refused before anything was made


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200 to any GET but /missing (404), and 201 to a POST; notes what it was sent."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self._answer(404 if self.path == "/missing" else 200)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.seen.append(f"POST {self.path} {body}")
        self._answer(201)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[str]]]:
    seen: list[str] = []

    class Handler(_Recorder):
        pass

    Handler.seen = seen
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_one_connection_replays_the_slice_in_stream_order_and_counts_errors_by_kind(recorder: tuple[int, list[str]]) -> None:
    port, seen = recorder
    write = write_entry({"user": 3, "item": 9, "kind": "view"})
    entries = ["/recommend/items/1", write, "/missing", "/recommend/users/2?service=home/for-you"]
    sent = replay(port, entries)
    assert seen == [entries[0], write, "/missing", entries[3]]
    assert (sent.answered, sent.errors, sent.ok, sent.by_kind) == (4, 1, 3, {"HTTP 404": 1})


def test_several_connections_send_every_entry_once(recorder: tuple[int, list[str]]) -> None:
    port, seen = recorder
    entries = [f"/recommend/items/{i}" for i in range(40)]
    assert replay(port, entries, connections=4).answered == 40
    assert sorted(seen) == sorted(entries)


def test_a_slice_starts_the_stream_again_at_its_end() -> None:
    assert stream_slice(["/a", "/b", "/c"], 2, 4) == ["/c", "/a", "/b", "/c"]
    with pytest.raises(ValueError, match="empty"):
        stream_slice([], 0, 1)


def test_a_counted_server_runs_no_reference_work() -> None:
    base = ["--mongo-uri", "mongodb://127.0.0.1:1"]
    assert parse_server_args("sanic", base).settings.pace is True
    assert parse_server_args("sanic", [*base, "--no-pace"]).settings.pace is False


def test_a_timed_bench_is_not_resumed_as_a_count(tmp_path: Path) -> None:
    ResultsFile(tmp_path / "results.jsonl").append(record(BASELINE, 0, 100.0))
    workload = prepare_workload(TINY_SPEC, tmp_path / "runs", load_rules(DEFAULT_RULES))
    loop = RunLoop(tmp_path, resume=True)
    with pytest.raises(UsageError, match=r"measure \(time then, instructions now\); window \(None then, 20 now\)"):
        loop.check_resumed(workload, workload.spec.load, "ofat", "instructions", 20)
