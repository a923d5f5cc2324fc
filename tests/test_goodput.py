"""Overload on the load side: answers refused by admission control (503, `{"error":"overloaded"...}`)
counted apart as "shed", goodput (successes within the latency objective), the successes' and the
shed answers' latency apart, and clients that retry a shed request after its Retry-After; merged
across processes into the run record, which still reads records and parts from before these fields.

The live tests drive the real generator (a locust process) against a stand-in for a server's
admission replies: a small threaded HTTP server on 127.0.0.1 whose path names the reply (`/ok`,
`/slow`, `/shed`, `/unavailable`: a 503 that is not admission control, `/flaky`: shed the first
attempt, answer the retry)."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest
from hdrh.histogram import HdrHistogram

from reclab.host.cores import CpuUse
from reclab.host.processes import ProcessGroup
from reclab.load.driver import Generator, LoadResult, PhaseLoad, merge_parts
from reclab.results.config import RunConfig
from reclab.results.file import read_results
from reclab.results.record import PhaseResult
from reclab.run.metrics import MetricsDelta
from reclab.run.phases import phase_result
from servers.core.tomlcheck import SpecError
from tests.records import phase, record
from workloads.loadplan import (
    RETRY_AFTER_DEFAULT_S,
    RETRY_AFTER_MAX_S,
    LoadPart,
    LoadSettings,
    PhasePlan,
    PhaseRecord,
    PhaseWindow,
    new_histogram,
    record_us,
    retry_after_s,
)
from workloads.spec import LoadModel, Phase, load_spec

SLOW_S = 0.4  # /slow answers this late: never within the live runs' objective
OBJECTIVE_MS = 150.0
SHED_REPLY = b'{"error":"overloaded","detail":"the server is at its admission limit"}'
UNAVAILABLE_REPLY = b'{"error":"unavailable","detail":"the deadline passed"}'
NEW_PHASE_FIELDS = (
    "objective_ms", "goodput_rps", "good", "shed", "latency_ok_us", "hdr_ok", "latency_shed_us", "offered_multiple",
    "retries", "retried_ok",
)  # fmt: skip


# -- the stand-in server -------------------------------------------------------------------------------

# kind -> (Retry-After of its shed first attempt, None: no header) for the kinds answered on their retry
FLAKY = {"flaky": "0", "flaky-wait": "1", "flaky-nohdr": None, "hold": "2"}


class AdmissionStandIn(BaseHTTPRequestHandler):
    """Answers by the first segment of the path; counts every request it gets, by path."""

    protocol_version = "HTTP/1.1"
    server: StandInServer

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits[self.path] += 1
            attempt = self.server.hits[self.path]
        kind = self.path.split("/")[1]
        if kind == "slow":
            time.sleep(SLOW_S)
        if kind == "shed":
            self.reply(503, SHED_REPLY, "0")
        elif kind == "unavailable":
            self.reply(503, UNAVAILABLE_REPLY, "0")
        elif kind in FLAKY and attempt == 1:
            self.reply(503, SHED_REPLY, FLAKY[kind])
        else:
            self.reply(200, b'{"items":[]}')

    def reply(self, status: int, body: bytes, retry_after: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


class StandInServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), AdmissionStandIn)
        self.lock = threading.Lock()
        self.hits: collections.Counter[str] = collections.Counter()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@dataclass
class Lab:
    server: StandInServer
    generator: Generator
    work_dir: Path

    def run(self, name: str, paths: list[str], load: LoadModel) -> LoadResult:
        """One run of `load` over `paths` (the stream, from position 0: no warm-up), merged."""
        paths_file = self.work_dir / f"{name}.txt"
        paths_file.write_text("\n".join(paths))
        run = self.generator.prepare(self.server.url, paths_file, load, 1, self.work_dir / name)
        self.generator.release(run, lambda: True)
        result = self.generator.collect(run)
        result.check()
        return result


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    server = StandInServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with ProcessGroup() as group:
            work_dir = tmp_path_factory.mktemp("goodput")
            yield Lab(server, Generator(group, 1, work_dir), work_dir)
    finally:
        server.shutdown()
        server.server_close()


def load_of(
    *phases: Phase, max_outstanding: int = 100, objective_ms: float = 100.0, retry_shed: bool = False, max_retries: int = 3
) -> LoadModel:
    return LoadModel(
        users=2, arrival="constant", max_outstanding=max_outstanding, processes=1, warmup_requests=0, phases=phases,
        objective_ms=objective_ms, retry_shed=retry_shed, max_retries=max_retries,
    )  # fmt: skip


def counted(histogram: HdrHistogram) -> int:
    return int(histogram.get_total_count())


def outcomes(phase: PhaseLoad) -> int:
    return phase.ok + sum(phase.errors.values())


# -- live: the generator against the stand-in ----------------------------------------------------------


@pytest.mark.slow
def test_shed_answers_are_counted_apart_and_goodput_counts_only_successes_within_the_objective(lab: Lab) -> None:
    kinds = ("ok", "slow", "shed", "unavailable")
    paths = [f"/{kinds[j % 4]}/a{j}" for j in range(400)]
    load = load_of(
        Phase("open", "open", rate=40.0, duration_s=1.0, drain_s=1.5), Phase("closed", "closed", duration_s=0.5),
        objective_ms=OBJECTIVE_MS,
    )  # fmt: skip
    opened, closed = lab.run("plain", paths, load).phases
    assert (opened.expected, opened.sent, opened.unsent, opened.unfinished) == (40, 40, 0, 0)
    assert opened.errors == {"shed": 10, "http_503": 10} and opened.ok == 20 and outcomes(opened) == opened.expected
    assert opened.shed == 10 and counted(opened.shed_histogram) == 10 and counted(opened.ok_histogram) == 20
    assert opened.objective_ms == OBJECTIVE_MS
    in_time = [latency for _, latency, what in opened.trace if what == "200" and latency * 1000 <= OBJECTIVE_MS]
    assert opened.good == len(in_time) and 0 < opened.good <= 10  # /slow is never in time
    assert opened.goodput == pytest.approx(opened.good / opened.window.seconds)
    assert opened.ok_histogram.get_min_value() < SLOW_S * 1e6 <= opened.ok_histogram.get_max_value()
    assert (opened.retries, opened.retried_ok) == (0, 0)
    assert all(lab.server.hits[p] == 1 for p in paths[:40])  # no retry: each arrival sent once
    assert closed.ok > 0 and closed.shed > 0 and closed.shed == closed.errors["shed"]
    assert set(closed.errors) <= {"shed", "http_503"} and counted(closed.ok_histogram) == closed.ok
    assert closed.good <= closed.ok and (closed.retries, closed.retried_ok) == (0, 0)
    assert all(lab.server.hits[p] <= 1 for p in paths[40:])

    result = phase_result(opened, CpuUse(1.0, {}, {}, {}), MetricsDelta(0, 0, 0, 0, 0, {}), shared_cores=[])
    assert result.errors == {"http_503": 10, "shed": 10} and result.shed == 10 and result.good == opened.good
    assert result.goodput_rps == round(opened.good / opened.window.seconds, 3) and result.objective_ms == OBJECTIVE_MS
    assert result.latency_ok_us is not None and result.latency_ok_us.max >= SLOW_S * 1e6
    assert result.latency_shed_us is not None and result.latency_shed_us.max < SLOW_S * 1e6
    assert counted(HdrHistogram.decode(result.hdr_ok)) == 20 and result.offered_multiple is None
    assert msgspec.json.decode(msgspec.json.encode(result), type=PhaseResult) == result


@pytest.mark.slow
def test_clients_that_retry_send_a_shed_entry_again_after_its_retry_after(lab: Lab) -> None:
    kinds = ("flaky", "shed", "unavailable", "ok", "flaky-wait", "flaky-nohdr")
    paths = [f"/{kinds[j % 6]}/b{j}" for j in range(24)] + [f"/flaky/b{j}" for j in range(24, 2000)]
    load = load_of(
        Phase("open", "open", rate=24.0, duration_s=1.0, drain_s=2.5), Phase("closed", "closed", duration_s=0.5),
        retry_shed=True, max_retries=3,
    )  # fmt: skip
    opened, closed = lab.run("retry", paths, load).phases
    assert (opened.expected, opened.sent, opened.unsent, opened.unfinished) == (24, 24, 0, 0)
    assert opened.ok == 16 and opened.errors == {"shed": 4, "http_503": 4} and outcomes(opened) == 24
    assert opened.retried_ok == 12  # flaky, flaky-wait, flaky-nohdr: shed once, then answered
    assert opened.retries == 12 + 4 * 3  # ... and /shed, three retries each before its last shed answer
    assert opened.shed == 4 and counted(opened.shed_histogram) == 4 and counted(opened.ok_histogram) == 16
    hits = lab.server.hits
    by_kind = collections.defaultdict(set)
    for path in paths[:24]:
        by_kind[path.split("/")[1]].add(hits[path])
    assert by_kind == {"flaky": {2}, "shed": {4}, "unavailable": {1}, "ok": {1}, "flaky-wait": {2}, "flaky-nohdr": {2}}
    waited = [latency for j, (_, latency, what) in enumerate(opened.trace) if kinds[j % 6] in ("flaky-wait", "flaky-nohdr")]
    assert len(waited) == 8 and min(waited) >= 1.0  # Retry-After: 1, and 1 s when it is missing
    assert all(what == "200" for j, (_, _, what) in enumerate(opened.trace) if kinds[j % 6].startswith("flaky"))
    # the closed phase: every entry is shed once and answered on its retry
    assert closed.ok > 0 and closed.errors == {} and closed.retried_ok == closed.ok
    assert closed.ok <= closed.retries <= closed.ok + load.users


@pytest.mark.slow
def test_a_waiting_retry_keeps_its_place_and_one_still_waiting_when_the_phase_settles_is_unfinished(lab: Lab) -> None:
    paths = ["/hold/c0", "/ok/c1", "/ok/c2", "/hold/c3"]
    load = load_of(
        Phase("held", "open", rate=3.0, duration_s=1.0, drain_s=2.5),  # /hold/c0 waits 2 s for its retry
        Phase("settled", "open", rate=2.0, duration_s=0.5, drain_s=0.5),  # /hold/c3: settled before its retry
        max_outstanding=1, retry_shed=True,
    )  # fmt: skip
    held, settled = lab.run("hold", paths, load).phases
    assert (held.expected, held.sent, held.held_back, held.unsent) == (3, 1, 2, 2)
    assert held.ok == 1 and held.errors == {"unsent": 2} and held.retries == 1 and held.retried_ok == 1
    assert held.trace[0][1] >= 2.0 and held.good == 0  # answered after its 2 s wait, from its due moment
    assert (settled.expected, settled.sent, settled.unfinished, settled.retries) == (1, 1, 1, 0)
    assert settled.errors == {"unfinished": 1} and settled.ok == 0 and settled.shed == 0
    hits = lab.server.hits
    assert (hits["/hold/c0"], hits["/ok/c1"], hits["/ok/c2"], hits["/hold/c3"]) == (2, 0, 0, 1)


# -- the pieces ----------------------------------------------------------------------------------------


def test_retry_after_is_whole_seconds_capped_with_one_second_when_unusable() -> None:
    assert (retry_after_s("0"), retry_after_s("1"), retry_after_s(" 2 "), retry_after_s("3600")) == (0.0, 1.0, 2.0, 10.0)
    assert RETRY_AFTER_MAX_S == 10.0 and RETRY_AFTER_DEFAULT_S == 1.0
    for unusable in (None, "", "soon", "-1", "1.5", "²", "Wed, 21 Oct 2015 07:28:00 GMT"):
        assert retry_after_s(unusable) == 1.0


def test_the_load_table_reads_the_objective_and_the_retries(tmp_path: Path) -> None:
    default = load_spec().load
    assert (default.objective_ms, default.retry_shed, default.max_retries) == (100.0, False, 3)
    path = tmp_path / "s.toml"
    path.write_text("[load]\nobjective_ms = 25\nretry_shed = true\nmax_retries = 5\n")
    load = load_spec(path).load
    assert (load.objective_ms, load.retry_shed, load.max_retries) == (25.0, True, 5)
    assert load.quick().retry_shed and load.quick().objective_ms == 25.0
    for body, message in (
        ("objective_ms = 0", r"load\.objective_ms"),
        ("retry_shed = 1", r"load\.retry_shed: must be true or false"),
        ("retry_shed = true\nmax_retries = 11", r"load\.max_retries"),
        ("max_retries = 2", r"load\.max_retries: applies to clients that retry"),
    ):
        path.write_text(f"[load]\n{body}\n")
        with pytest.raises(SpecError, match=message):
            load_spec(path)


def test_load_settings_carry_the_retries_and_older_settings_read_without_them(tmp_path: Path) -> None:
    phases = (PhasePlan("p", "open", 10.0, 1.0),)
    settings = LoadSettings("r", "http://x", "s", 1, 1, "poisson", 5, 1, 0, phases, "sig", "out", objective_ms=20.0,
                            retry_shed=True, max_retries=2)  # fmt: skip
    settings.post(tmp_path / "mailbox.json")
    assert LoadSettings.read(tmp_path / "mailbox.json") == settings and settings.retries_allowed == 2
    data = msgspec.json.decode((tmp_path / "mailbox.json").read_bytes())
    for name in ("objective_ms", "retry_shed", "max_retries"):
        del data[name]
    older = LoadSettings.from_dict(data)
    assert (older.objective_ms, older.retry_shed, older.retries_allowed) == (100.0, False, 0)


def histogram_of(*latencies_ms: float) -> str:
    histogram = new_histogram()
    for latency in latencies_ms:
        record_us(histogram, latency * 1000)
    return histogram.encode().decode("ascii")


def judged(objective_ms: float | None, ok: list[float], shed: list[float], good: int, retries: int = 0) -> PhaseRecord:
    return PhaseRecord(
        "open", ok=len(ok), errors={"shed": len(shed)} if shed else {}, expected=len(ok) + len(shed),
        sent=len(ok) + len(shed), hdr=histogram_of(*ok, *shed), objective_ms=objective_ms, good=good, shed=len(shed),
        retries=retries, retried_ok=min(retries, len(ok)), hdr_ok=histogram_of(*ok), hdr_shed=histogram_of(*shed),
    )  # fmt: skip


def merged(tmp_path: Path, *records: PhaseRecord | dict) -> PhaseLoad:
    paths = []
    for index, recorded in enumerate(records):
        paths.append(tmp_path / f"load.{index}.json")
        if isinstance(recorded, dict):  # a part as written before goodput was recorded
            paths[-1].write_bytes(msgspec.json.encode({"index": index, "run_id": "r", "phases": [recorded]}))
        else:
            LoadPart(index, "r", phases=[recorded]).write(paths[-1])
    return merge_parts([PhaseWindow("open", "open", 10.0, 0.0, 2.0, 2.3)], paths).phases[0]


def test_parts_merge_their_goodput_shed_answers_retries_and_histograms(tmp_path: Path) -> None:
    phase_load = merged(
        tmp_path, judged(50.0, [10.0, 20.0, 80.0], [1.0], good=2, retries=3), judged(50.0, [30.0], [2.0, 3.0], good=1)
    )
    assert (phase_load.objective_ms, phase_load.good, phase_load.shed) == (50.0, 3, 3)
    assert (phase_load.retries, phase_load.retried_ok, phase_load.errors) == (3, 3, {"shed": 3})
    assert counted(phase_load.ok_histogram) == 4 and counted(phase_load.shed_histogram) == 3
    assert phase_load.ok_histogram.get_max_value() == pytest.approx(80_000, rel=0.01)
    assert phase_load.shed_histogram.get_max_value() == pytest.approx(3_000, rel=0.01)
    assert phase_load.goodput == 1.5 and counted(phase_load.histogram) == 7


def test_a_part_from_before_goodput_reads_and_leaves_the_phase_unjudged(tmp_path: Path) -> None:
    old = {"name": "open", "ok": 5, "errors": {"http_503": 1}, "expected": 6, "sent": 6, "hdr": histogram_of(*[5.0] * 6)}
    assert PhaseRecord.from_dict(old).objective_ms is None and PhaseRecord.from_dict(old).hdr_ok == ""
    phase_load = merged(tmp_path, judged(50.0, [10.0], [], good=1), old)
    assert (phase_load.ok, phase_load.expected, phase_load.errors) == (6, 7, {"http_503": 1})
    assert phase_load.objective_ms is None and phase_load.goodput is None and phase_load.good == 0
    assert counted(phase_load.ok_histogram) == 0
    result = phase_result(phase_load, CpuUse(1.0, {}, {}, {}), MetricsDelta(0, 0, 0, 0, 0, {}), shared_cores=[])
    assert result.goodput_rps is None and result.latency_ok_us is None and result.hdr_ok == ""
    assert result.latency_us is not None and result.latency_shed_us is None


def test_processes_judged_by_different_objectives_leave_the_phase_unjudged(tmp_path: Path) -> None:
    phase_load = merged(tmp_path, judged(50.0, [10.0], [], good=1), judged(80.0, [10.0], [], good=1))
    assert phase_load.objective_ms is None and phase_load.goodput is None


def test_a_record_from_before_goodput_reads_with_the_defaults(tmp_path: Path) -> None:
    data = msgspec.json.decode(msgspec.json.encode(record(RunConfig(), 0, 100.0)))
    data["schema"] = 2  # a line of schema 2: the bench described inline
    for measured in data["phases"]:
        assert set(NEW_PHASE_FIELDS) <= set(measured)
        for name in NEW_PHASE_FIELDS:
            del measured[name]
    for name in ("objective_ms", "retry_shed", "max_retries"):
        del data["bench"]["load"][name]
    results = tmp_path / "results.jsonl"
    results.write_bytes(msgspec.json.encode(data) + b"\n")
    older = read_results(results)[0]
    assert older.schema == 2 and older.bench.load.objective_ms == 100.0 and not older.bench.load.retry_shed
    first = older.phases[0]
    assert (first.objective_ms, first.goodput_rps, first.good, first.shed, first.retries, first.retried_ok) == (
        None, None, 0, 0, 0, 0
    )  # fmt: skip
    assert first.latency_ok_us is None and first.latency_shed_us is None and first.offered_multiple is None
    assert msgspec.structs.replace(phase("open", 10.0), offered_multiple=4.0).offered_multiple == 4.0
