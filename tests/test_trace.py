"""Real interaction logs as workloads: reading a log (ids remapped, kinds, timestamps, ratings), the
checks of a messy log (every bad line with its number and reason, undecodable bytes, blank lines,
timestamps that cannot be right, ratings off the scale, the rejects file), item files (with a header
or MovieLens'), errors of one line, an import that writes all or nothing, the similarity worked out
by hand, the stream replayed in time order at the recorded gaps, and a bench and its report on an
imported sample, unchanged."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from reclab.cli import main
from reclab.commands import import_trace as import_command
from reclab.commands.bench import BenchArgs, bench
from reclab.commands.import_trace import import_trace
from reclab.report.build import build_report
from reclab.results.file import read_results
from reclab.run.options import Connections
from servers.core.rules import DEFAULT_RULES
from servers.core.store import ACTIVITY_GROUP, group_events
from workloads import trace_log
from workloads.dataset import DatasetParams, generate
from workloads.loadplan import parse_stream
from workloads.spec import load_spec
from workloads.stream import build_stream, spread_moments
from workloads.trace_dataset import MOVIELENS_GENRES, interaction_matrix, read_items, top_similar
from workloads.trace_log import TraceError, escape_raw, infer_scale, read_log
from workloads.trace_sample import write_sample
from workloads.writes import parse_write

SAMPLE = Path(__file__).resolve().parents[1] / "workloads" / "traces" / "sample.csv"
SAMPLE_ITEMS = SAMPLE.with_name("sample-items.csv")
T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
HEADER = "user,item,rating,timestamp\n"
Capture = pytest.CaptureFixture[str]
Scale = tuple[float, float]


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(count: int, start: int = T0, step: int = 60) -> list[str]:
    """`count` good lines of a log with ratings, 50 users and 40 items, a minute apart by default."""
    return [f"u{n % 50},i{n % 40},{1 + n % 5},{start + n * step}\n" for n in range(count)]


def run_cli(capsys: Capture, *args: str | Path) -> tuple[int, str, str]:
    code = main(["import-trace", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ids_are_remapped_densely_and_ratings_and_times_read(tmp_path: Path) -> None:
    log = read_log(
        write(tmp_path, "user;item;rating;time\nann;x9;5;2025-01-01T00:00:10Z\nbob;x9;1;1735689620\nann;y;3;1735689630000\n")
    )
    assert log.users.tolist() == [1, 2, 1] and log.items.tolist() == [1, 1, 2]
    assert log.user_ids == ["ann", "bob"] and log.item_ids == ["x9", "y"]
    assert log.kinds.tolist() == [1, 2, 0]  # like, dislike, view
    assert log.times.tolist() == [1735689610, 1735689620, 1735689630]  # ISO, seconds, milliseconds
    events = read_log(write(tmp_path, f"a\t1\tbuy\t{T0}\nb\t2\tclick\t{T0 + 1}\n"), columns=["user", "item", "kind", "timestamp"])
    assert events.kinds.tolist() == [3, 0]  # purchase, view: no header, tab sniffed
    custom = read_log(write(tmp_path, f"a,1,4,{T0}\n"), kinds="purchase=4..,view=*", header=False)
    assert custom.kinds.tolist() == [3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        (f"{HEADER}a,1,5,{T0}\nb,2,5\n", "line 3: wrong column count: 3, expected at least 4"),
        (f"{HEADER}a,1,5,{T0}\nb,2,5,yesterday\n", "line 3: unparsable timestamp: 'yesterday'"),
        (f"{HEADER}a,1,five,{T0}\n", "line 2: unparsable rating: 'five'"),
        (f"user,item,event,timestamp\na,1,teleport,{T0}\n", "line 2: unknown event kind: 'teleport'"),
        (f"{HEADER}a,1,5,{T0}\n,2,5,{T0}\n", "line 3: empty id"),
        (f'{HEADER}a,1,5,{T0}\n"b,2,5,{T0}\n', "line 3: malformed quoting"),
        (HEADER, "holds no interactions \\(only a header\\)"),
        (f"{HEADER}\n\n", "holds no interactions \\(only a header and 2 blank lines\\)"),
        ("\n \n", "is empty \\(only blank lines\\)"),
    ],
)
def test_bad_files_are_errors_with_their_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        read_log(write(tmp_path, text))


def test_a_binary_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    path.write_bytes(b"user,item\n\xd0\x00\xff\xfe" * 100)
    with pytest.raises(TraceError, match="is not a text file"):
        read_log(path)


def test_bad_lines_can_be_skipped_and_are_counted(tmp_path: Path) -> None:
    log = read_log(write(tmp_path, f"{HEADER}a,1,5,{T0}\nb,2,5\nc,3,4,soon\nd,4,4,{T0 + 9}\n"), skip_bad=True)
    assert log.users.tolist() == [1, 2] and log.lines == 4
    assert dict(log.skipped) == {"wrong column count": 1, "unparsable timestamp": 1}
    assert [(b.line, b.raw) for b in log.bad] == [(3, b"b,2,5"), (4, b"c,3,4,soon")]


def test_cosine_of_co_occurrence_as_worked_out_by_hand(tmp_path: Path) -> None:
    """Item 1 was seen by A, B, C; item 2 by A, B; item 3 by C. cos(1,2) = 2/sqrt(3*2) = .8165,
    cos(1,3) = 1/sqrt(3) = .5774, cos(2,3) = 0 (left out)."""
    log = read_log(write(tmp_path, "".join(f"{u},{i},{T0 + n}\n" for n, (u, i) in enumerate(
        [("A", "i1"), ("A", "i2"), ("B", "i1"), ("B", "i2"), ("C", "i1"), ("C", "i3")]))), header=False)  # fmt: skip
    matrix = interaction_matrix(log, 3, 3)
    assert top_similar(matrix.T.tocsr(), 5) == [[(2, 0.8165), (3, 0.5774)], [(1, 0.8165)], [(1, 0.5774)]]
    assert top_similar(matrix, 5)[0] == [(2, 1.0), (3, 0.5)]  # A and B share both items; A and C one of two each


def test_the_shipped_sample_is_what_its_generator_writes(tmp_path: Path) -> None:
    write_sample(tmp_path / "sample.csv", 5000, items_out=tmp_path / "items.csv")
    assert (tmp_path / "sample.csv").read_bytes() == SAMPLE.read_bytes()
    assert (tmp_path / "items.csv").read_bytes() == SAMPLE_ITEMS.read_bytes()


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trace") / "sample"
    assert import_trace(file=SAMPLE, out=out, items=SAMPLE_ITEMS) == 0
    return out


def test_an_import_writes_a_dataset_ids_and_a_spec_the_lab_takes(imported: Path, tmp_path: Path) -> None:
    summary = orjson.loads((imported / "import.json").read_bytes())
    assert summary["interactions"] == 5000 and summary["categories"] == "from the item file"
    users = (imported / "ids" / "users.tsv").read_text().splitlines()
    assert len(users) == summary["users"] and users[0].startswith("1\tu")
    spec = load_spec(imported / "spec.toml")
    dataset = generate(spec.dataset)
    assert dataset.content_hash() == summary["dataset_hash"]
    assert len(dataset.collections["events"]) == 5000
    again = tmp_path / "again"
    import_trace(file=SAMPLE, out=again, items=SAMPLE_ITEMS)
    assert orjson.loads((again / "import.json").read_bytes())["dataset_hash"] == summary["dataset_hash"]


def test_the_stream_replays_the_log_in_time_order_at_its_gaps(imported: Path) -> None:
    spec = load_spec(imported / "spec.toml")
    dataset = generate(spec.dataset)
    stream = build_stream(spec, dataset)
    start, count = spec.requests.start, spec.requests.count
    assert 0 < start < start + count <= len(dataset.collections["events"])  # the log before `start` is loaded
    events = sorted(dataset.collections["events"], key=lambda e: (e["ts"], e["_id"]))[start : start + count]
    written = [(n, event) for n, path in enumerate(stream.paths) if (event := parse_write(path)) is not None]
    assert len(written) == count
    assert [event for _, event in written[:200]] == [{k: e[k] for k in ("user", "item", "kind", "ts")} for e in events[:200]]
    for n, event in written[:200]:  # a write is followed by another write, or by a read naming its user
        after, user = stream.paths[n + 1], event["user"]
        named = f"/users/{user}?" in after or (f"/items/{event['item']}?" in after and after.endswith(f"&user={user}"))
        assert parse_write(after) is not None or named
    moments = spread_moments([e["ts"] for e in events])  # same-second events spread across their second
    assert stream.gaps is not None
    at = list(itertools.accumulate(stream.gaps))
    assert [at[n] for n, _ in written[:50]] == pytest.approx([m - moments[0] for m in moments[:50]])
    assert parse_stream(stream.text()) == (stream.paths, [round(g, 6) for g in stream.gaps])
    assert build_stream(spec, dataset).hash == stream.hash
    assert spec.load.arrival == "trace" and spec.load.phases[0].rate == 20  # paced per window to it (tests/test_replay.py)


@pytest.mark.slow
def test_bench_and_report_run_unchanged_on_an_imported_trace(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    connections = Connections(rules=DEFAULT_RULES)
    code = bench(BenchArgs(spec=imported / "spec.toml", connections=connections, quick=True, repeats=1, out=out,
                           no_warmup_run=True, no_ceiling=True, matrix="rules"))  # fmt: skip
    assert code == 0
    records = [r for r in read_results(out / "results.jsonl") if r.kind == "run"]
    assert records and all(r.ok for r in records)
    assert all(p.ok > 0 for r in records for p in r.phases)
    build_report(out)
    assert str(imported / "spec.toml") in (out / "report.md").read_text()


# --- messy logs: every line read, every bad line named ---


def test_every_bad_line_is_named_with_its_number_and_the_whole_file_is_read(tmp_path: Path) -> None:
    lines = [HEADER, *rows(30)]
    lines[3] = "u1,i1,5\n"  # line 4
    lines[-1] = "u2,i2,5,soon\n"  # the last line, 31
    with pytest.raises(TraceError) as caught:
        read_log(write(tmp_path, "".join(lines)))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'log.csv'}: 2 bad lines of 30")
    assert "line 4: wrong column count" in message and "line 31: unparsable timestamp: 'soon'" in message
    many = [HEADER, *rows(10), *(f"u,i,5,bad{n}\n" for n in range(15))]
    with pytest.raises(TraceError) as caught:
        read_log(write(tmp_path, "".join(many)))
    message = str(caught.value)
    assert "15 bad lines" in message and "line 12: unparsable" in message and "line 21: unparsable" in message
    assert "line 22:" not in message and "... and 5 more" in message  # the first 10, then a count


def test_line_numbers_are_the_file_s_own_with_the_header_and_blank_lines(tmp_path: Path) -> None:
    text = f"\n{HEADER}\n{rows(1)[0]}  \n\nu9,i9,4,never\n"
    log = read_log(write(tmp_path, text), skip_bad=True)
    assert [(b.line, b.key) for b in log.bad] == [(7, "unparsable timestamp")]  # header on line 2
    assert log.blank == 4 and log.lines == 6 and len(log.users) == 1


def test_without_skip_bad_a_bad_line_fails_the_import_and_writes_nothing(tmp_path: Path, capsys: Capture) -> None:
    log = write(tmp_path, HEADER + "".join(rows(20)) + "u1,i1,4\n")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, log, "--out", out)
    assert code == 2 and "1 bad line of 21" in err and "line 22: wrong column count: 3, expected at least 4" in err
    assert "Traceback" not in err and not out.exists() and list(tmp_path.iterdir()) == [log]


def test_with_skip_bad_every_bad_line_goes_to_the_rejects_file_escaped(tmp_path: Path, capsys: Capture) -> None:
    body = [HEADER.encode(), *(line.encode() for line in rows(40))]
    body[5] = b"u1,caf\xe9,4,1735689900\n"  # latin-1, not UTF-8
    body[9] = b"back\\slash\twith a tab\n"
    body[12] = b"u3,i3,4\r5,1735689600\r\n"  # a carriage return inside the line
    body.extend(f"u{n},i1,3,bad\n".encode() for n in range(12))
    log = tmp_path / "log.csv"
    log.write_bytes(b"".join(body))
    out = tmp_path / "out"
    code, printed, _ = run_cli(capsys, log, "--out", out, "--skip-bad")
    assert code == 0 and "15 bad lines left out" in printed and "line 6: not valid utf-8: byte 0xe9" in printed
    assert "... and 5 more" in printed
    rejects = (out / "rejects.tsv").read_text(encoding="utf-8").split("\n")
    assert rejects[0] == "line\treason\traw" and rejects[-1] == "" and len(rejects) == 1 + 15 + 1
    records = [line.split("\t") for line in rejects[1:-1]]
    assert all(len(record) == 3 for record in records)  # one record a line, three columns
    assert records[0] == ["6", "not valid utf-8: byte 0xe9 at byte 7 of the line", "u1,caf\\xe9,4,1735689900"]
    assert records[1][0] == "10" and records[1][2] == "back\\\\slash\\twith a tab"
    assert records[2][0] == "13" and records[2][2] == "u3,i3,4\\r5,1735689600"
    assert [int(r[0]) for r in records] == sorted(int(r[0]) for r in records) and records[-1][0] == str(len(body))
    summary = orjson.loads((out / "import.json").read_bytes())
    assert summary["bad"] == 15 and summary["rejects"] == str(out / "rejects.tsv")
    reasons = {"not valid utf-8": 1, "wrong column count": 1, "unparsable rating": 1, "unparsable timestamp": 12}
    assert summary["skipped"] == reasons
    assert summary["interactions"] == 40 - 3 and summary["lines"] == len(body) - 1


def test_escaping_keeps_a_line_one_record_and_marks_undecodable_bytes() -> None:
    assert escape_raw(b"a\tb\\c\x01\xff", "utf-8") == "a\\tb\\\\c\\x01\\xff"
    assert escape_raw("café".encode(), "utf-8") == "café"


def test_an_undecodable_line_is_a_bad_line_and_the_encoding_can_be_given(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_bytes(HEADER.encode() + f"zoë,i1,4,{T0}\n".encode("latin-1") + "".join(rows(5, T0 + 60)).encode())
    skipped = read_log(log, skip_bad=True)
    assert dict(skipped.skipped) == {"not valid utf-8": 1} and len(skipped.users) == 5
    with pytest.raises(TraceError, match="line 2: not valid utf-8: byte 0xeb"):
        read_log(log)
    latin = read_log(log, encoding="latin-1")
    assert latin.user_ids[0] == "zoë" and len(latin.users) == 6


def test_a_byte_order_mark_opening_the_file_is_ignored(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_bytes(b"\xef\xbb\xbf" + "".join(rows(3)).encode())
    assert read_log(log, header=False).user_ids == ["u0", "u1", "u2"]


# --- timestamps that cannot be right ---


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("0", "zero timestamp"),
        ("1970-01-01T00:00:00Z", "zero timestamp"),
        ("599616000", "timestamp before 1990"),  # 1989-01-01
        ("1989-12-31T23:59:59Z", "timestamp before 1990"),
        ("-5", "timestamp before 1990"),
        ("{in three days}", "timestamp in the future"),  # worked out when the test runs
        ("2100-01-01", "timestamp in the future"),
        ("nan", "unparsable timestamp"),
    ],
)
def test_timestamps_that_cannot_be_right_are_bad_lines(tmp_path: Path, stamp: str, reason: str) -> None:
    lines = rows(10)
    stamp = stamp.replace("{in three days}", str(int(time.time()) + 3 * 86_400))
    lines.insert(4, f"u1,i1,4,{stamp}\n")
    log = read_log(write(tmp_path, "".join(lines)), header=False, skip_bad=True)
    assert [(b.line, b.key) for b in log.bad] == [(5, reason)] and len(log.users) == 10


def test_a_single_zero_among_valid_timestamps_no_longer_sets_the_replay_pace(tmp_path: Path) -> None:
    lines = [HEADER, *rows(100)]
    lines.insert(50, "u1,i1,4,0\n")
    log = write(tmp_path, "".join(lines))
    with pytest.raises(TraceError, match="line 51: zero timestamp"):
        read_log(log)
    import_trace(file=log, out=tmp_path / "out", skip_bad=True)
    summary = orjson.loads((tmp_path / "out" / "import.json").read_bytes())
    assert summary["span_s"] == 99 * 60 and summary["skipped"] == {"zero timestamp": 1}


def test_a_timestamp_far_outside_the_bulk_of_the_log_is_a_bad_line(tmp_path: Path) -> None:
    """2,000 lines ten minutes apart (13.9 days): a moment in 2010 is far outside; one five days after
    the last is within a span of the bulk and kept."""
    lines = rows(2000, step=600)
    lines.insert(700, "stray,stray-item,4,1262304000\n")  # 2010-01-01, line 701
    lines.append(f"u1,i1,4,{T0 + 2000 * 600 + 5 * 86_400}\n")
    log = read_log(write(tmp_path, "".join(lines)), header=False, skip_bad=True)
    assert [(b.line, b.key) for b in log.bad] == [(701, "timestamp far outside the bulk of the log")]
    assert "2010-01-01T00:00:00Z" in log.bad[0].reason and log.bad[0].raw == b"stray,stray-item,4,1262304000"
    assert len(log.users) == 2001 and log.times.min() == T0
    assert "stray" not in log.user_ids and "stray-item" not in log.item_ids  # ids renumbered without it
    assert log.users.max() == len(log.user_ids) and log.items.max() == len(log.item_ids)
    assert log.time_bulk[0] <= T0 and log.time_bulk[1] >= T0 + 2000 * 600 + 5 * 86_400


# --- ratings: checked and kept ---


def test_ratings_that_are_not_finite_or_off_the_scale_are_bad_lines(tmp_path: Path) -> None:
    lines = [HEADER, *rows(50)]
    lines[10], lines[20], lines[30], lines[40] = (f"u1,i1,{value},{T0}\n" for value in ("nan", "inf", "-3", "-inf"))
    log = read_log(write(tmp_path, "".join(lines)), skip_bad=True)
    assert [(b.line, b.key) for b in log.bad] == [
        (11, "rating not a finite number"), (21, "rating not a finite number"), (31, "rating out of scale"),
        (41, "rating not a finite number"),
    ]  # fmt: skip
    assert log.rating_scale == (1.0, 5.0) and "-3 (scale 1..5)" in log.bad[2].reason
    assert np.isfinite(log.ratings).all() and log.ratings.min() >= 1 and log.ratings.max() <= 5


def test_a_given_rating_scale_is_kept_to(tmp_path: Path) -> None:
    log = write(tmp_path, HEADER + "".join(rows(20)))
    with pytest.raises(TraceError, match=r"(?s)4 bad lines.*line 6: rating out of scale: 5 \(scale 1\.\.4\)"):
        read_log(log, rating_scale=(1.0, 4.0))
    assert read_log(log, rating_scale=(0.0, 10.0)).rating_scale_from == "given"


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([1, 0, 1, 1], (0.0, 1.0)),
        ([1, 2, 3, 4, 5] * 10, (1.0, 5.0)),
        ([0.5, 1.5, 5, 3.5] * 10, (0.5, 5.0)),
        ([0, 3, 5] * 10, (0.0, 5.0)),
        ([1, 7, 10] * 10, (1.0, 10.0)),
        ([0, 55, 100] * 10, (0.0, 100.0)),
        ([1, 2, 3, 4, 5] * 10 + [9], (1.0, 5.0)),  # one stray rating among 51 is off the scale
        ([1, 2, 3, 4, 5] * 2 + [9], (1.0, 10.0)),  # but not among 11
        ([1, 2, 3, 4, 5] * 400 + [0, 6], (1.0, 5.0)),  # two among 2002: 0.1%
    ],
)
def test_the_rating_scale_is_the_narrowest_common_one_holding_99_9_percent(values: list[float], scale: Scale) -> None:
    assert infer_scale(np.array(values, dtype=np.float64))[0] == scale


def test_without_a_common_scale_the_ratings_own_range_is_the_scale() -> None:
    plays = np.array([*range(1, 1001), 250_000], dtype=np.float64)  # a long tail, kept
    scale, how = infer_scale(plays)
    assert scale == (1.0, 250_000.0) and "the ratings' own range" in how


def test_ratings_are_kept_on_events_only_for_logs_that_have_them(tmp_path: Path) -> None:
    rated = write(tmp_path, HEADER + "".join(rows(30)))
    import_trace(file=rated, out=tmp_path / "rated")
    events = [orjson.loads(line) for line in (tmp_path / "rated" / "dataset" / "events.jsonl").read_bytes().splitlines()]
    by_line = {(f"u{n % 50}", f"i{n % 40}", T0 + n * 60): float(1 + n % 5) for n in range(30)}
    users = (tmp_path / "rated" / "ids" / "users.tsv").read_text().split()[1::2]
    items = (tmp_path / "rated" / "ids" / "items.tsv").read_text().split()[1::2]
    assert {(users[e["user"] - 1], items[e["item"] - 1], e["ts"]): e["rating"] for e in events} == by_line
    assert all(isinstance(e["rating"], float) for e in events)
    unrated = write(tmp_path, "user,item,event,timestamp\n" + "".join(f"u{n},i{n},click,{T0 + n}\n" for n in range(30)))
    import_trace(file=unrated, out=tmp_path / "unrated")
    events = [orjson.loads(line) for line in (tmp_path / "unrated" / "dataset" / "events.jsonl").read_bytes().splitlines()]
    assert all(set(e) == {"user", "item", "kind", "ts", "_id"} for e in events)
    assert not any("rating" in e for e in generate(DatasetParams(users=20, items=30, categories=3)).collections["events"])


def test_the_servers_group_events_the_same_with_or_without_the_rating() -> None:
    plain = [{"item": 3, "kind": "like", "ts": T0 + n} for n in (0, 5)] + [{"item": 4, "kind": "view", "ts": T0}]
    rated = [{**event, "rating": 4.5} for event in plain]
    assert group_events(rated) == group_events(plain)
    assert "rating" not in str(ACTIVITY_GROUP)  # the `$group` of grouping=db takes item, kind and ts only


# --- blank lines and the summary ---


def test_blank_lines_are_counted_in_the_summary(tmp_path: Path, capsys: Capture) -> None:
    lines = [HEADER, *rows(10)]
    lines[3:3] = ["\n", "   \n", "\r\n"]
    code, printed, _ = run_cli(capsys, write(tmp_path, "".join(lines)), "--out", tmp_path / "out")
    summary = orjson.loads((tmp_path / "out" / "import.json").read_bytes())
    assert code == 0 and summary["blank"] == 3 and summary["lines"] == 13 and summary["interactions"] == 10
    assert "13 lines: 10 interactions, 3 blank, 0 bad" in printed and summary["rejects"] is None
    assert not (tmp_path / "out" / "rejects.tsv").exists()


# --- --out: a folder written whole or not at all ---


def test_out_naming_a_file_is_a_one_line_error(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "taken").write_text("x")
    code, _, err = run_cli(capsys, write(tmp_path, HEADER + "".join(rows(5))), "--out", tmp_path / "taken")
    assert code == 2 and err == f"reclab: error: --out {tmp_path / 'taken'} is a file: give a folder (new, or empty)\n"


def test_an_existing_empty_out_folder_ends_up_holding_the_import(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert import_trace(file=write(tmp_path, HEADER + "".join(rows(5))), out=out) == 0
    assert {p.name for p in out.iterdir()} == {"dataset", "ids", "spec.toml", "import.json"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "out"]  # no temporary folder left


def test_a_failure_while_writing_leaves_nothing_in_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(import_command, "_write_ids", fail)
    out = tmp_path / "out"
    with pytest.raises(import_command.LabError, match="No space left on device"):
        import_trace(file=write(tmp_path, HEADER + "".join(rows(5))), out=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]
    monkeypatch.setattr(import_command, "_write_ids", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        import_trace(file=tmp_path / "log.csv", out=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "out"] and not any(out.iterdir())


# --- item files: with a header, or MovieLens' ---


def movielens_items(path: Path, count: int, flags: int = 19) -> None:
    """A u.item-shaped file: id|title|release date|video release date|URL|flags, Latin-1, no header."""
    lines = []
    for n in range(1, count + 1):
        marks = ["0"] * flags
        marks[n % flags] = marks[(n + 3) % flags] = "1"
        title = "Café Society (1995)" if n == 2 else f"Movie {n} (1995)"
        lines.append(f"{n}|{title}|01-Jan-1995||http://us.imdb.com/M/title-exact?Movie%20{n}|{'|'.join(marks)}\n")
    path.write_bytes("".join(lines).encode("latin-1"))


def test_a_movielens_item_file_is_read(tmp_path: Path) -> None:
    movielens_items(tmp_path / "u.item", 30)
    items = read_items(tmp_path / "u.item")
    assert items["1"].name == "Movie 1 (1995)" and items["1"].category == "Action" and items["1"].price == 0.0
    assert items["2"].name == "Café Society (1995)" and items["2"].category == "Adventure"
    assert items["19"].category == MOVIELENS_GENRES[0] == "unknown" and items["4"].category == "Children's"
    movielens_items(tmp_path / "other.item", 8, flags=5)
    assert read_items(tmp_path / "other.item")["3"].category == "genre-02"


def test_an_import_takes_a_movielens_log_and_item_file(tmp_path: Path) -> None:
    movielens_items(tmp_path / "u.item", 30)
    log = write(tmp_path, "".join(f"{1 + n % 7}\t{1 + n % 30}\t{1 + n % 5}\t{881250949 + n}\n" for n in range(200)), "u.data")
    out = tmp_path / "ml"
    assert import_trace(file=log, out=out, items=tmp_path / "u.item") == 0
    summary = orjson.loads((out / "import.json").read_bytes())
    assert summary["categories"] == "from the item file" and summary["rating_scale"] == [1.0, 5.0]
    items = {d["_id"]: d for d in map(orjson.loads, (out / "dataset" / "items.jsonl").read_bytes().splitlines())}
    assert items[1]["name"] == "Movie 1 (1995)" and items[1]["category"] == "Action" and items[1]["price"] == 0.0


def test_a_bad_item_file_is_an_error_with_its_line(tmp_path: Path) -> None:
    movielens_items(tmp_path / "u.item", 5)
    lines = (tmp_path / "u.item").read_bytes().split(b"\n")
    (tmp_path / "short.item").write_bytes(b"\n".join([*lines[:3], lines[3].rsplit(b"|", 1)[0], *lines[4:]]))
    with pytest.raises(TraceError, match=r"short\.item: line 4: wrong field count: 23, expected 24"):
        read_items(tmp_path / "short.item")
    (tmp_path / "flag.item").write_bytes(b"\n".join([*lines[:1], lines[1][:-1] + b"x", *lines[2:]]))
    with pytest.raises(TraceError, match=r"flag\.item: line 2: an empty id, or a genre flag other than 0/1"):
        read_items(tmp_path / "flag.item")
    write(tmp_path, "item,price\nsku-1,3.5\nsku-2,cheap\n", "priced.csv")
    with pytest.raises(TraceError, match=r"priced\.csv: line 3: unparsable price: 'cheap'"):
        read_items(tmp_path / "priced.csv")
    write(tmp_path, "sku-1,a\n", "plain.csv")
    with pytest.raises(TraceError, match=r"plain\.csv: line 1: the header must name an `item` column"):
        read_items(tmp_path / "plain.csv")


def test_an_item_file_with_a_header_still_reads_and_falls_back_to_latin_1(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_bytes("item;category;name;price\nsku-1;toys;Caf\u00e9;2.5\n\nsku-2;;;\n".encode("latin-1"))
    items = read_items(tmp_path / "items.csv")
    assert items["sku-1"].name == "Café" and items["sku-1"].price == 2.5 and items["sku-2"].category is None


# --- bad input: one line, never a traceback ---


def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, capsys: Capture) -> None:
    good = write(tmp_path, HEADER + "".join(rows(5)), "good.csv")
    (tmp_path / "folder").mkdir()
    (tmp_path / "binary.bin").write_bytes(bytes(range(256)) * 50)
    write(tmp_path, "", "empty.csv")
    write(tmp_path, HEADER, "header.csv")
    write(tmp_path, HEADER + "a,b\nc,d\n", "allbad.csv")
    cases: list[tuple[list[str | Path], str]] = [
        ([tmp_path / "folder"], f"{tmp_path / 'folder'}: cannot be read (Is a directory)"),
        ([tmp_path / "missing.csv"], f"{tmp_path / 'missing.csv'}: cannot be read (No such file or directory)"),
        ([tmp_path / "empty.csv"], f"{tmp_path / 'empty.csv'}: is empty"),
        ([tmp_path / "binary.bin"], f"{tmp_path / 'binary.bin'}: is not a text file"),
        ([tmp_path / "header.csv"], f"{tmp_path / 'header.csv'}: holds no interactions (only a header)"),
        ([tmp_path / "allbad.csv", "--skip-bad"], f"{tmp_path / 'allbad.csv'}: holds no interactions: all 2 lines"),
        ([good, "--items", tmp_path / "nope.csv"], f"{tmp_path / 'nope.csv'}: cannot be read (No such file or directory)"),
        ([good, "--columns", "user,item,ratin,timestamp"], "--columns: 'ratin' is not one of"),
        ([good, "--delimiter", ";;"], "--delimiter ';;': give one character"),
        ([good, "--delimiter", "\\x"], "--delimiter '\\\\x': give one character"),
        ([good, "--rating-scale", "1-5"], "--rating-scale '1-5': give LO..HI"),
        ([good, "--rating-scale", "5..1"], "--rating-scale '5..1': give LO..HI"),
        ([good, "--rating-scale", "a..b"], "--rating-scale 'a..b': give LO..HI"),
        ([good, "--encoding", "klingon"], "--encoding: unknown encoding 'klingon'"),
        ([good, "--encoding", "utf-16"], "--encoding: 'utf-16' is not ASCII-compatible"),
        ([good, "--kinds", "like=x..y"], "--kinds: 'like=x..y': a range is LO..HI with numbers"),
    ]
    for args, message in cases:
        out = tmp_path / "out"
        code, _, err = run_cli(capsys, *args, "--out", out)
        first, *rest = err.splitlines()
        assert code == 2 and first.startswith("reclab: error: ") and message in first, (args, err)
        assert "Traceback" not in err and not out.exists(), (args, err)
        assert not rest or "allbad" in str(args[0]), (args, err)  # only bad lines are listed below the message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_one_line(tmp_path: Path, capsys: Capture) -> None:
    log = write(tmp_path, HEADER + "".join(rows(5)))
    log.chmod(0)
    code, _, err = run_cli(capsys, log, "--out", tmp_path / "out")
    assert code == 2 and err == f"reclab: error: {log}: cannot be read (Permission denied)\n"


def test_a_file_that_cannot_be_opened_is_one_line_whoever_runs_the_tests(tmp_path: Path, capsys: Capture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    def refuse(*_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied")

    log = write(tmp_path, HEADER + "".join(rows(5)))
    monkeypatch.setattr(trace_log, "open", refuse, raising=False)
    code, _, err = run_cli(capsys, log, "--out", tmp_path / "out")
    assert code == 2 and err == f"reclab: error: {log}: cannot be read (Permission denied)\n"


def test_strays_sharing_one_wrong_date_are_caught_up_to_one_percent(tmp_path: Path) -> None:
    lines = rows(2000, step=600)
    for n in range(15):  # 0.75% of the lines, all on one placeholder date
        lines.insert(100 * n + 50, "u1,i1,4,2011-01-01T00:00:00Z\n")
    log = read_log(write(tmp_path, "".join(lines)), header=False, skip_bad=True)
    assert dict(log.skipped) == {"timestamp far outside the bulk of the log": 15} and len(log.users) == 2000
    spread = read_log(write(tmp_path, "".join(rows(500, start=T0 - 400 * 86_400, step=86_400))), header=False)
    assert len(spread.users) == 500  # an evenly spread log (500 days) is left whole


def test_the_bulk_of_the_log_is_at_least_a_day_wide(tmp_path: Path) -> None:
    lines = rows(2000, step=1)  # 33 minutes
    lines.append(f"u1,i1,4,{T0 + 12 * 3600}\n")  # half a day later: kept
    lines.append(f"u1,i1,4,{T0 + 3 * 86_400}\n")  # three days later: far outside
    log = read_log(write(tmp_path, "".join(lines)), header=False, skip_bad=True)
    assert [b.line for b in log.bad] == [2002] and len(log.users) == 2001


def test_a_nul_byte_past_the_opening_of_the_file_is_a_bad_line(tmp_path: Path) -> None:
    lines = [line.encode() for line in rows(5000)]  # more than the 64 KiB looked at first
    lines[4500] = b"u1,i\x001,4,1735689600\n"
    log = tmp_path / "log.csv"
    log.write_bytes(b"".join(lines))
    assert [(b.line, b.reason) for b in read_log(log, header=False, skip_bad=True).bad] == [(4501, "a NUL byte in the line")]
