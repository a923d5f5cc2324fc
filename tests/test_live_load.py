"""Live events on the load side: write entries in streams (their text form, a generated stream's share
of them drawn like the dataset's events, a trace replaying each interaction as a write), the dataset
the database is loaded with for such a replay, wrk sending writes, and reads and writes kept apart
from the generator's parts to the run record and the report."""

from __future__ import annotations

import collections
import shutil
import statistics
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec
import pytest

from reclab.analysis.summary import summarise
from reclab.analysis.traffic import traffic_rows
from reclab.host.processes import ProcessGroup
from reclab.load.driver import KindLoad, PhaseLoad, merge_parts
from reclab.load.wrk import run_wrk
from reclab.report.traffic import traffic_section
from reclab.results.config import RunConfig
from reclab.results.file import read_results
from reclab.results.record import RunRecord
from reclab.run.measure import with_traffic
from servers.core.tomlcheck import SpecError
from tests.records import phase, record
from tests.test_replay import LOG
from workloads.dataset import DATASET_NOW, KIND_WEIGHTS, KINDS, generate, write_jsonl
from workloads.loadplan import (
    KindRecord,
    LoadPart,
    LoadSettings,
    PhasePlan,
    PhaseRecord,
    PhaseWindow,
    format_stream,
    new_histogram,
    parse_stream,
    record_us,
)
from workloads.replay_pace import arrivals_in
from workloads.spec import SPECS_DIR, WorkloadSpec, load_spec
from workloads.stream import build_stream
from workloads.trace_dataset import BuildSettings, build_dataset
from workloads.trace_log import read_log
from workloads.world import dataset_for
from workloads.writes import WRITE_PREFIX, is_write, parse_write, write_entry, written_users

# The streams of the specs as they were before streams held writes (write_share = 0 must keep them).
TINY_STREAM_HASH = "a0fe2dc9556d6f4c"
DEFAULT_READ_ONLY_HASH = "92899c2217640647"
READ_ONLY_REPLAY_HASH = "6ea2823a6421da35"  # the log of tests/test_replay.py, trace_writes = false

SMALL_WORLD = """name = "w"
[dataset]
items = 400
categories = 8
users = 300
events_per_user = 30
[requests]
count = 20000
user_popularity = "activity"
{extra}
"""


def small_spec(tmp_path: Path, extra: str = "write_share = 0.3") -> WorkloadSpec:
    path = tmp_path / "world.toml"
    path.write_text(SMALL_WORLD.format(extra=extra))
    return load_spec(path)


@pytest.fixture(scope="module")
def log_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The log of tests/test_replay.py (60 users, 720 ratings in bursts of four a second) as a dataset."""
    folder = tmp_path_factory.mktemp("log")
    (folder / "log.csv").write_text(LOG)
    dataset, _ = build_dataset(read_log(folder / "log.csv"), load_spec().dataset, BuildSettings(), {})
    write_jsonl(dataset, folder / "dataset")
    return folder


def trace_spec(folder: Path, name: str, extra: str = "", start: int = 200) -> WorkloadSpec:
    path = folder / f"{name}.toml"
    path.write_text(f"""name = "t"
[dataset]
source = "dataset"
[requests]
source = "trace"
count = 400
start = {start}
{extra}
[load]
arrival = "trace"
warmup_requests = 10
rate = 50
""")
    return load_spec(path)


# -- the entry contract -------------------------------------------------------------------------------


def test_a_write_entry_is_the_prefix_and_the_event_as_compact_json_in_key_order() -> None:
    entry = write_entry({"ts": 1700000123, "kind": "view", "item": 5, "user": 12, "rating": 4.0})
    assert entry == 'POST /events {"user":12,"item":5,"kind":"view","ts":1700000123}'
    assert parse_write(entry) == {"user": 12, "item": 5, "kind": "view", "ts": 1700000123}
    assert write_entry({"user": 1, "item": 2, "kind": "like"}) == 'POST /events {"user":1,"item":2,"kind":"like"}'
    assert parse_write("/recommend/users/12?service=home/for-you") is None and not is_write("/events")
    text = format_stream([entry, "/recommend/items/5?service=x"], [0.0, 1.5])
    assert parse_stream(text) == ([entry, "/recommend/items/5?service=x"], [0.0, 1.5])


# -- generated streams --------------------------------------------------------------------------------


def test_without_writes_the_streams_are_those_of_before() -> None:
    tiny = load_spec(SPECS_DIR / "tiny.toml")
    assert tiny.requests.write_share == 0.0
    assert build_stream(tiny, generate(tiny.dataset)).hash == TINY_STREAM_HASH
    default = load_spec(SPECS_DIR / "default.toml")
    assert default.requests.write_share == 0.2
    read_only = replace(default, requests=replace(default.requests, write_share=0.0))
    stream = build_stream(read_only, generate(default.dataset))
    assert stream.hash == DEFAULT_READ_ONLY_HASH and not any(is_write(p) for p in stream.paths)


def test_a_generated_stream_holds_its_share_of_writes_drawn_like_the_dataset(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    dataset = generate(spec.dataset)
    stream = build_stream(spec, dataset)
    assert stream == build_stream(spec, dataset) and len(stream.paths) == 20_000
    writes = [(n, event) for n, p in enumerate(stream.paths) if (event := parse_write(p)) is not None]
    assert abs(len(writes) / 20_000 - 0.3) < 0.015
    assert all(write_entry(event) == stream.paths[n] for n, event in writes)  # every write parses back
    assert all(list(event) == ["user", "item", "kind", "ts"] for _, event in writes)
    assert [event["ts"] for n, event in writes] == [DATASET_NOW + n for n, _ in writes]  # the newest, one a second
    kinds = collections.Counter(event["kind"] for _, event in writes)
    for kind, weight in zip(KINDS, KIND_WEIGHTS, strict=True):
        assert abs(kinds[kind] / len(writes) - weight) < 0.03
    cold = {u["_id"] for u in dataset.collections["users"] if u["cold"]}
    history = collections.Counter(e["user"] for e in dataset.collections["events"])
    written = collections.Counter(event["user"] for _, event in writes)
    assert not set(written) & cold and written_users(stream.paths) == set(written)
    warm = sorted(history)
    assert statistics.correlation([history[u] for u in warm], [written[u] for u in warm]) > 0.6  # activity-weighted
    popular = collections.Counter(e["item"] for e in dataset.collections["events"])
    items = collections.Counter(event["item"] for _, event in writes)
    shown = sorted(popular)
    assert statistics.correlation([popular[i] for i in shown], [items[i] for i in shown]) > 0.6
    assert all(i in popular for i in items)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("write_share = 1.5", r"world\.toml.*requests\.write_share"),
        ('write_share = "lots"', r"requests\.write_share"),
        ("trace_writes = false", r"requests\.trace_writes: applies to a trace replayed in time order"),
        ("read_after_share = 0.2", r"requests\.read_after_share: applies to a trace"),
    ],
)
def test_bad_write_keys_name_the_file_and_key(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        small_spec(tmp_path, extra)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("write_share = 0.1", r"requests\.write_share: applies to a generated stream"),
        ('trace_writes = "yes"', r"requests\.trace_writes: must be true or false"),
        ("read_after_share = -0.1", r"requests\.read_after_share"),
        ("trace_writes = false\nread_after_share = 0.3", r"read_after_share: applies to a replay with writes"),
        ('order = "sample"\ntrace_writes = true', r"trace_writes: applies to a trace replayed in time order"),
    ],
)
def test_bad_replay_write_keys_name_the_file_and_key(log_folder: Path, extra: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        trace_spec(log_folder, "bad", extra, start=0)


# -- traces -------------------------------------------------------------------------------------------


def test_a_replay_writes_each_interaction_once_and_reads_after_a_share(log_folder: Path) -> None:
    spec = trace_spec(log_folder, "writes")
    assert spec.requests.replays_writes and spec.requests.read_after_share == 0.5
    full = generate(spec.dataset)
    stream = build_stream(spec, full)
    events = sorted(full.collections["events"], key=lambda e: (e["ts"], e["_id"]))[200:600]
    written = [(n, e) for n, p in enumerate(stream.paths) if (e := parse_write(p)) is not None]
    assert [e for _, e in written] == [{k: event[k] for k in ("user", "item", "kind", "ts")} for event in events]
    assert stream.gaps is not None and len(stream.gaps) == len(stream.paths)
    reads = 0
    ends = [n for n, _ in written[1:]] + [len(stream.paths)]
    for (n, event), after in zip(written, ends, strict=True):
        followers = stream.paths[n + 1 : after]
        assert len(followers) <= 1
        for read in followers:  # at the same moment, naming the write's user
            reads += 1
            assert stream.gaps[n + 1] == 0.0
            assert f"/users/{event['user']}?" in read or read.endswith(f"&user={event['user']}")
    assert 0.4 < reads / len(written) < 0.6
    for share, expected in (("0.0", 0), ("1.0", len(events))):
        other = build_stream(trace_spec(log_folder, f"share{share}", f"read_after_share = {share}"), full)
        assert len(other.paths) - len(events) == expected
    read_only = build_stream(trace_spec(log_folder, "read-only", "trace_writes = false"), full)
    assert len(read_only.paths) == 400 and not any(is_write(p) for p in read_only.paths)


def test_the_read_only_replay_is_the_replay_of_before(log_folder: Path) -> None:
    path = log_folder / "before.toml"
    path.write_text('name = "t"\n[dataset]\nsource = "dataset"\n[requests]\nsource = "trace"\ncount = 500\n'
                    'trace_writes = false\n[load]\narrival = "trace"\nwarmup_requests = 10\n')  # fmt: skip
    spec = load_spec(path)
    assert build_stream(spec, generate(spec.dataset)).hash == READ_ONLY_REPLAY_HASH


def test_the_database_of_a_replay_with_writes_leaves_out_the_window_onward(log_folder: Path) -> None:
    spec = trace_spec(log_folder, "loaded")
    full = generate(spec.dataset)
    loaded = dataset_for(spec, full)
    ordered = sorted(full.collections["events"], key=lambda e: (e["ts"], e["_id"]))
    assert {e["_id"] for e in loaded.collections["events"]} == {e["_id"] for e in ordered[:200]}
    assert loaded.content_hash() != full.content_hash() == generate(spec.dataset).content_hash()
    assert loaded.collections["meta"][0]["hash"] == loaded.content_hash()
    assert loaded.collections["items"] is full.collections["items"] and len(full.collections["events"]) == 720
    assert build_stream(spec, full).hash == build_stream(spec, generate(spec.dataset)).hash
    read_only = trace_spec(log_folder, "loaded-read-only", "trace_writes = false")
    assert dataset_for(read_only, full) is full


def test_a_generated_spec_loads_its_dataset_as_generated(tmp_path: Path) -> None:
    spec = small_spec(tmp_path)
    full = generate(spec.dataset)
    assert dataset_for(spec, full) is full and dataset_for(spec).content_hash() == full.content_hash()


def test_a_replay_with_writes_offers_the_phase_rate_in_arrivals_reads_and_writes_alike(log_folder: Path) -> None:
    spec = trace_spec(log_folder, "paced")
    stream = build_stream(spec, generate(spec.dataset))
    settings = LoadSettings(
        run_id="r", host="http://x", paths_file="s", processes=1, users=1, arrival="trace", max_outstanding=10, seed=1,
        warmup_requests=10, phases=(PhasePlan("a", "open", 50.0, 2.0),), signal_dir=".", out="o",
    )  # fmt: skip
    offsets = settings.arrival_offsets(0, stream.gaps)
    assert len(offsets) == arrivals_in(50.0, 2.0) == 100 and all(0 <= o < 2.0 for o in offsets)
    entries = stream.paths[10:110]
    assert any(is_write(e) for e in entries) and not all(is_write(e) for e in entries)
    pace = settings.window_pace(0, stream.gaps)
    assert pace is not None and pace.arrivals == 100


# -- records and the report ---------------------------------------------------------------------------


def kind_record(ok: int, errors: dict[str, int], latency_ms: float) -> KindRecord:
    histogram = new_histogram()
    for _ in range(ok + sum(errors.values())):
        record_us(histogram, latency_ms * 1000)
    return KindRecord(ok, errors, histogram.encode().decode("ascii"))


def part_phase(reads: KindRecord, writes: KindRecord | None) -> PhaseRecord:
    histogram = new_histogram()
    kinds = [reads] + ([writes] if writes else [])
    for kind in kinds:
        histogram.decode_and_add(kind.hdr)
    errors: collections.Counter[str] = collections.Counter()
    for kind in kinds:
        errors.update(kind.errors)
    return PhaseRecord(
        "open", ok=sum(k.ok for k in kinds), errors=dict(errors), hdr=histogram.encode().decode("ascii"),
        reads=reads if writes else None, writes=writes,
    )  # fmt: skip


def test_reads_and_writes_are_kept_apart_and_add_up_to_the_totals(tmp_path: Path) -> None:
    window = PhaseWindow("open", "open", 10.0, 0.0, 4.0, 4.3)
    parts = [
        LoadPart(0, "r", phases=[part_phase(kind_record(30, {"http_503": 2}, 5.0), kind_record(8, {"unsent": 1}, 40.0))]),
        LoadPart(1, "r", phases=[part_phase(kind_record(12, {}, 6.0), None)]),  # this process sent no writes
    ]
    paths = []
    for part in parts:
        paths.append(tmp_path / f"load.{part.index}.json")
        part.write(paths[-1])
    assert LoadPart.read(paths[0]).phases[0].writes == parts[0].phases[0].writes
    merged = merge_parts([window], paths).phases[0]
    assert merged.reads is not None and merged.writes is not None
    assert (merged.reads.ok, merged.reads.errors) == (42, {"http_503": 2})
    assert (merged.writes.ok, merged.writes.errors) == (8, {"unsent": 1})
    assert merged.reads.requests + merged.writes.requests == merged.ok + sum(merged.errors.values()) == 53
    counted = merged.reads.histogram.get_total_count() + merged.writes.histogram.get_total_count()
    assert counted == merged.histogram.get_total_count()
    result = with_traffic(phase("open", 10.0), merged)
    assert result.reads is not None and result.writes is not None and result.has_writes
    assert (result.reads.rps, result.writes.rps, result.writes.requests, result.writes.error_count) == (10.5, 2.0, 9, 1)
    assert result.writes.p99_ms == pytest.approx(40.0, rel=0.01) and result.reads.p50_ms == pytest.approx(5.0, rel=0.01)
    without = merge_parts([window], paths[1:]).phases[0]
    assert without.reads is None and with_traffic(phase("open", 10.0), without).writes is None


def with_writes(run: RunRecord, write_p99_ms: float) -> RunRecord:
    """`run` with 30 reads and 10 writes (and one 503 each) in its open phase."""
    load = PhaseLoad(PhaseWindow("open", "open", 10.0, 0.0, 4.0, 4.3))
    load.reads, load.writes = KindLoad(30, {"http_503": 1}), KindLoad(10, {"http_503": 1})
    for kind, latency_ms in ((load.reads, 5.0), (load.writes, write_p99_ms)):
        for _ in range(kind.requests):
            record_us(kind.histogram, latency_ms * 1000)
    return msgspec.structs.replace(run, phases=[with_traffic(run.phases[0], load), *run.phases[1:]])


def test_an_older_record_reads_as_without_writes_and_the_report_shows_writes_only_when_there_were(tmp_path: Path) -> None:
    base, other = RunConfig(), RunConfig(framework="tornado")
    plain = [record(base, r, 100.0) for r in range(2)]
    data = msgspec.json.decode(msgspec.json.encode(plain[0]))
    for measured in data["phases"]:  # a line written before phases kept reads and writes apart
        del measured["reads"], measured["writes"]
    results = tmp_path / "results.jsonl"
    results.write_bytes(msgspec.json.encode(data) + b"\n")
    older = read_results(results)[0]
    assert older.phases[0].writes is None and not older.phases[0].has_writes and older.phases[0].reads is None
    assert traffic_section(traffic_rows(summarise(plain), ["open", "closed"])) is None
    runs = [with_writes(record(config, r, 100.0), p99) for config, p99 in ((base, 20.0), (other, 30.0)) for r in range(2)]
    rows = traffic_rows(summarise(runs), ["open", "closed"])
    assert [(r.key, r.phase, r.runs) for r in rows] == [(base.key, "open", 2), (other.key, "open", 2)]
    assert rows[1].writes.p99_ms == pytest.approx(30.0, rel=0.01) and rows[0].writes.errors == 2
    assert rows[0].write_share == pytest.approx(11 / 42)
    section = traffic_section(rows)
    assert section is not None and section.title == "Reads and writes" and len(section.tables[0].rows) == 2


# -- wrk ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (Debian's wrk package)")
def test_wrk_sends_writes_as_posts_of_their_body(tmp_path: Path) -> None:
    seen: list[tuple[str, str, str, bytes]] = []
    lock = threading.Lock()

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, body: bytes) -> None:
            with lock:
                seen.append((self.command, self.path, self.headers.get("Content-Type", ""), body))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_GET(self) -> None:
            self.answer(b"")

        def do_POST(self) -> None:
            self.answer(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    entry = write_entry({"user": 3, "item": 4, "kind": "like", "ts": 1700000000})
    stream = tmp_path / "stream.txt"
    stream.write_text(f"/a\n{entry}\n")
    try:
        with ProcessGroup() as group:
            window = run_wrk(
                group, f"http://127.0.0.1:{server.server_address[1]}", stream, connections=1, seconds=1.0, start=0,
                log_path=tmp_path / "wrk.txt", cores=None,
            )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert window.requests >= 2 and window.bad_status == 0
    assert seen[0] == ("GET", "/a", "", b"")
    assert seen[1] == ("POST", "/events", "application/json", entry.removeprefix(WRITE_PREFIX).encode())
