"""Open phases offer their nominal rate: a replayed log paced per window (bursts kept, pauses
shortened, same-second events spread, the window placed anywhere in the log), Poisson arrivals
holding exactly rate x duration, and the spec's keys for it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.core.tomlcheck import SpecError
from workloads.dataset import generate
from workloads.loadplan import LoadSettings, PhasePlan
from workloads.replay_pace import MAX_PAUSE_GAPS, arrivals_in, paced_offsets
from workloads.spec import load_spec
from workloads.stream import build_stream, spread_moments
from workloads.trace_dataset import BuildSettings, build_dataset
from workloads.trace_log import read_log

gaps_lists = st.lists(st.one_of(st.just(0.0), st.floats(0.001, 5.0), st.floats(60.0, 86_400.0)), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(gaps=gaps_lists, duration=st.floats(0.5, 20.0))
def test_a_paced_window_spans_its_length_with_pauses_capped_and_bursts_in_proportion(gaps: list[float], duration: float) -> None:
    offsets, pace = paced_offsets(gaps, duration)
    n = len(gaps)
    assert len(offsets) == n and offsets[0] == 0.0
    assert all(b >= a for a, b in itertools.pairwise(offsets))
    cap = MAX_PAUSE_GAPS * duration / n
    replayed = [b - a for a, b in itertools.pairwise(offsets)]
    assert all(gap <= cap * (1 + 1e-9) for gap in replayed)
    if pace.speedup is None:  # too little recorded time to scale: even pacing
        assert replayed == pytest.approx([duration / n] * (n - 1))
        return
    assert sum(min(g / pace.speedup, cap) for g in gaps) == pytest.approx(duration, rel=1e-9)
    kept = [(g, r) for g, r in zip(gaps, replayed, strict=False) if 0 < g / pace.speedup < cap]
    for (g1, r1), (g2, r2) in itertools.pairwise(kept):  # gaps left as recorded keep their proportions
        assert r1 * g2 == pytest.approx(r2 * g1, rel=1e-6)
    assert pace.pauses_shortened == sum(1 for g in gaps if g / pace.speedup > cap * (1 + 1e-12))


def test_a_night_in_the_window_neither_empties_it_nor_squeezes_the_burst_into_a_spike() -> None:
    burst = [1 / 49] * 49  # 49 ratings within one second ...
    offsets, pace = paced_offsets([*burst, 8 * 3600.0], 2.5)  # ... then a night
    assert pace.pauses_shortened == 1
    assert offsets[-1] == pytest.approx(2.0)  # the night takes at most 10 mean gaps (0.5 s); the burst spreads over 2 s
    assert min(b - a for a, b in itertools.pairwise(offsets)) == pytest.approx(2.0 / 49)


def test_events_sharing_a_second_are_spread_across_it_in_log_order() -> None:
    assert spread_moments([10, 10, 10, 11, 13, 13]) == [10.0, 10 + 1 / 3, 10 + 2 / 3, 11.0, 13.0, 13.5]


def plan(arrival: str, *phases: PhasePlan, warmup: int = 5) -> LoadSettings:
    return LoadSettings("run", "http://x", "stream", 1, 4, arrival, 100, 7, warmup, phases, "signals", "out")


def test_every_open_phase_offers_its_nominal_rate() -> None:
    phases = (PhasePlan("a", "open", 20.0, 2.5), PhasePlan("b", "open", 7.0, 3.0), PhasePlan("c", "closed", 0.0, 1.0))
    bursty = [0.0] + [0.0 if i % 3 else 900.0 for i in range(1, 400)]  # bursts of three, quarter-hour apart
    for arrival, gaps in (("poisson", None), ("trace", bursty)):
        settings_ = plan(arrival, *phases)
        first = settings_.arrival_offsets(0, gaps)
        assert len(first) == arrivals_in(20.0, 2.5) == 50 and all(0 <= o < 2.5 for o in first)
        assert len(settings_.arrival_offsets(1, gaps)) == 21
        assert settings_.first_position(1) == 5 + 50 and settings_.first_position(2) == 5 + 50 + 21
    assert plan("poisson", *phases).arrival_offsets(0) == plan("poisson", *phases).arrival_offsets(0)  # seeded


def test_a_replayed_window_starts_where_the_earlier_phases_left_the_stream() -> None:
    gaps = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    settings_ = plan("trace", PhasePlan("a", "open", 1.0, 2.0), PhasePlan("b", "open", 1.0, 3.0), warmup=1)
    # phase a: entries 1, 2 with gaps after them 2.0, 3.0 (5 s of log in 2 s); phase b: entries 3-5, gaps 4, 5, 6
    assert settings_.arrival_offsets(0, gaps) == pytest.approx([0.0, 0.8])
    assert settings_.arrival_offsets(1, gaps) == pytest.approx([0.0, 0.8, 1.8])
    pace = settings_.window_pace(1, gaps)
    assert pace is not None and pace.speedup == pytest.approx(5.0) and pace.recorded_s == 15.0


LOG = "user,item,rating,timestamp\n" + "".join(
    f"u{u},i{(u * 7 + k) % 50},4,{1_700_000_000 + 3600 * u + (k // 4)}\n" for u in range(60) for k in range(12)
)


@pytest.fixture
def log_dataset(tmp_path: Path) -> Path:
    """A trace spec over a small log in bursts of four ratings a second, without running the importer."""
    log = tmp_path / "log.csv"
    log.write_text(LOG)
    dataset, _ = build_dataset(read_log(log), load_spec().dataset, BuildSettings(), {})
    from workloads.dataset import write_jsonl

    write_jsonl(dataset, tmp_path / "dataset")
    return tmp_path


READ_ONLY = "trace_writes = false\n"


def trace_spec(folder: Path, extra: str = "") -> Path:
    spec = folder / "spec.toml"
    spec.write_text(f"""name = "t"
[dataset]
source = "dataset"
[requests]
source = "trace"
count = 500
{extra}
[load]
arrival = "trace"
warmup_requests = 10
""")
    return spec


def test_the_replay_starts_at_a_position_or_a_moment_of_the_log(log_dataset: Path) -> None:
    """The read-only replay (each interaction a read); with writes, tests/test_live_load.py."""
    whole = load_spec(trace_spec(log_dataset, READ_ONLY))
    dataset = generate(whole.dataset)
    events = sorted(dataset.collections["events"], key=lambda e: (e["ts"], e["_id"]))
    base = build_stream(whole, dataset)
    assert base.gaps is not None and base.gaps[1:4] == pytest.approx([0.25, 0.25, 0.25])  # a second's four, spread
    by_position = build_stream(load_spec(trace_spec(log_dataset, READ_ONLY + "start = 120")), dataset)
    assert f"/{events[120]['user']}?" in by_position.paths[0] or f"user={events[120]['user']}" in by_position.paths[0]
    moment = events[300]["ts"]
    by_time = build_stream(load_spec(trace_spec(log_dataset, READ_ONLY + f"start_time = {moment}")), dataset)
    iso = build_stream(load_spec(trace_spec(log_dataset, READ_ONLY + 'start_time = "2023-11-14T22:13:20+00:00"')), dataset)
    assert by_time.hash != base.hash and len(by_time.paths) == min(500, len(events) - 300)
    assert iso.paths[0] == base.paths[0]  # that moment is the log's first second
    with pytest.raises(SpecError, match=r"requests.start: is beyond the log's 720 events"):
        build_stream(load_spec(trace_spec(log_dataset, "start = 720")), dataset)
    with pytest.raises(SpecError, match=r"start_time: is after the log's last event"):
        build_stream(load_spec(trace_spec(log_dataset, "start_time = 2100-01-01T00:00:00Z")), dataset)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("speedup = 12.5", r"requests.speedup: replays are paced per window"),
        ("start = 3\nstart_time = 1700000000", r"give either start \(a position\) or start_time"),
        ('start_time = "yesterday"', r"start_time: must be unix seconds or an ISO 8601 date-time"),
        ("start_time = true", r"start_time: must be unix seconds"),
        ("start = -1", r"requests.start: must be >= 0"),
    ],
)
def test_bad_replay_keys_are_refused_with_the_file_and_key(log_dataset: Path, extra: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(trace_spec(log_dataset, extra))


def test_a_generated_stream_has_no_start(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text("[requests]\nstart = 5\n")
    with pytest.raises(SpecError, match=r"start: applies to a trace replayed in time order"):
        load_spec(spec)
