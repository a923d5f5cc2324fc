"""Real interaction logs as workloads: reading a log (ids remapped, kinds, timestamps, bad lines with
their numbers), the similarity worked out by hand, the stream replayed in time order at the recorded
gaps, and a bench and its report on an imported sample, unchanged."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from reclab.commands.bench import bench
from reclab.commands.import_trace import import_trace
from reclab.report.build import build_report
from reclab.results.file import read_results
from servers.core.rules import DEFAULT_RULES
from workloads.dataset import generate
from workloads.loadplan import LoadSettings, PhasePlan, parse_stream
from workloads.spec import load_spec
from workloads.stream import build_stream
from workloads.trace_dataset import interaction_matrix, top_similar
from workloads.trace_log import TraceError, read_log
from workloads.trace_sample import write_sample

SAMPLE = Path(__file__).resolve().parents[1] / "workloads" / "traces" / "sample.csv"
SAMPLE_ITEMS = SAMPLE.with_name("sample-items.csv")


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ids_are_remapped_densely_and_ratings_and_times_read(tmp_path: Path) -> None:
    log = read_log(
        write(tmp_path, "user;item;rating;time\nann;x9;5;2025-01-01T00:00:10Z\nbob;x9;1;1735689620\nann;y;3;1735689630000\n")
    )
    assert log.users.tolist() == [1, 2, 1] and log.items.tolist() == [1, 1, 2]
    assert log.user_ids == ["ann", "bob"] and log.item_ids == ["x9", "y"]
    assert log.kinds.tolist() == [1, 2, 0]  # like, dislike, view
    assert log.times.tolist() == [1735689610, 1735689620, 1735689630]  # ISO, seconds, milliseconds
    events = read_log(write(tmp_path, "a\t1\tbuy\t5\nb\t2\tclick\t6\n"), columns=["user", "item", "kind", "timestamp"])
    assert events.kinds.tolist() == [3, 0]  # purchase, view: no header, tab sniffed
    custom = read_log(write(tmp_path, "a,1,4,5\n"), kinds="purchase=4..,view=*", header=False)
    assert custom.kinds.tolist() == [3]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("user,item,rating,timestamp\na,1,5,10\nb,2,5\n", "line 3: wrong column count: 3, expected at least 4"),
        ("user,item,rating,timestamp\na,1,5,10\nb,2,5,yesterday\n", "line 3: unparsable timestamp: 'yesterday'"),
        ("user,item,rating,timestamp\na,1,five,10\n", "line 2: unparsable rating: 'five'"),
        ("user,item,event,timestamp\na,1,teleport,10\n", "line 2: unknown event kind: 'teleport'"),
        ("user,item,rating,timestamp\n", "holds no interactions"),
    ],
)
def test_bad_files_are_errors_with_their_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        read_log(write(tmp_path, text))


def test_a_binary_file_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "log.bin"
    path.write_bytes(b"user,item\n\xd0\x00\xff\xfe" * 100)
    with pytest.raises(TraceError, match="is not UTF-8 text"):
        read_log(path)


def test_bad_lines_can_be_skipped_and_are_counted(tmp_path: Path) -> None:
    log = read_log(write(tmp_path, "user,item,rating,timestamp\na,1,5,10\nb,2,5\nc,3,4,soon\nd,4,4,20\n"), skip_bad=True)
    assert log.users.tolist() == [1, 2] and log.lines == 4
    assert dict(log.skipped) == {"wrong column count": 1, "unparsable timestamp": 1}


def test_cosine_of_co_occurrence_as_worked_out_by_hand(tmp_path: Path) -> None:
    """Item 1 was seen by A, B, C; item 2 by A, B; item 3 by C. cos(1,2) = 2/sqrt(3*2) = .8165,
    cos(1,3) = 1/sqrt(3) = .5774, cos(2,3) = 0 (left out)."""
    log = read_log(write(tmp_path, "A,i1,10\nA,i2,11\nB,i1,12\nB,i2,13\nC,i1,14\nC,i3,15\n"), header=False)
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
    events = sorted(dataset.collections["events"], key=lambda e: (e["ts"], e["_id"]))
    for path, event in zip(stream.paths[:200], events, strict=False):
        assert f"/{event['user']}?" in path or (f"/items/{event['item']}?" in path and path.endswith(f"&user={event['user']}"))
    assert stream.gaps is not None and stream.gaps[1] == pytest.approx(
        (events[1]["ts"] - events[0]["ts"]) / spec.requests.speedup
    )
    assert parse_stream(stream.text()) == (stream.paths, [round(g, 6) for g in stream.gaps])
    assert build_stream(spec, dataset).hash == stream.hash
    settings = LoadSettings("r", "", "", 1, 1, "trace", 10, 1, 2, (PhasePlan("open", "open", 1.0, 1.0),), "", "")
    gaps = [0.0, 0.5, 0.1, 0.2, 0.3, 0.4, 0.5]
    # from entry 2 (after a warm-up of 2) at 0; entries 3, 4, 5 follow .2, .3, .4 s apart; entry 6 would be at 1.4 s
    assert settings.arrival_offsets(0, gaps) == pytest.approx([0.0, 0.2, 0.5, 0.9])


@pytest.mark.slow
def test_bench_and_report_run_unchanged_on_an_imported_trace(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    code = bench(spec=imported / "spec.toml", rules=DEFAULT_RULES, quick=True, repeats=1, out=out, no_warmup_run=True,
                 no_ceiling=True, matrix="rules")  # fmt: skip
    assert code == 0
    records = [r for r in read_results(out / "results.jsonl") if r.kind == "run"]
    assert records and all(r.ok for r in records)
    assert all(p.ok > 0 for r in records for p in r.phases)
    build_report(out)
    assert str(imported / "spec.toml") in (out / "report.md").read_text()
