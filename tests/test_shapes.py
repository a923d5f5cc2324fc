"""The shapes of generated histories and sample logs: the default world's heavy-tailed, bursty
histories; the MovieLens-shaped sample log and item file; the exponential shape unchanged draw for
draw; the same seed giving the same data."""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reclab.cli import main
from tests.test_specs import assert_rejected
from workloads.dataset import DATASET_NOW, DAY, DatasetParams, generate
from workloads.spec import DEFAULT_SPEC, SPECS_DIR, load_spec
from workloads.stream import build_stream
from workloads.trace_sample import ML_FIRST, ML_LAST, ML_RATINGS, write_sample

# Content hashes of the exponential, session-less datasets, recorded before the history shapes existed.
TINY_HASH = "b885c36cfccc6c31"
NETWORK_HASH = "2285423dede86fb3"  # the default world before it became heavy-tailed
SHOP_SAMPLE_SHA256 = "24bf7195def355dc7b371967c63605a373943e6c84f2c2756e32e686a31f260f"  # 5,000 lines, seed 7


def zero_gap_share(moments: list[int]) -> float:
    """The share of gaps between consecutive moments, in time order, that are 0 s."""
    ordered = sorted(moments)
    return sum(a == b for a, b in itertools.pairwise(ordered)) / (len(ordered) - 1)


@pytest.fixture(scope="module")
def default_events() -> list[dict[str, Any]]:
    return generate(load_spec(DEFAULT_SPEC).dataset).collections["events"]


@pytest.fixture(scope="module")
def movielens(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple[int, ...]], bytes]:
    folder = tmp_path_factory.mktemp("movielens")
    assert write_sample(folder / "u.data", shape="movielens", items_out=folder / "u.item") == 100_000
    text = (folder / "u.data").read_text(encoding="ascii")
    rows = [tuple(int(cell) for cell in line.split("\t")) for line in text.splitlines()]
    assert all(len(row) == 4 for row in rows)
    return rows, (folder / "u.item").read_bytes()


def test_the_default_world_has_heavy_tailed_histories(default_events: list[dict[str, Any]]) -> None:
    per_user = sorted(Counter(e["user"] for e in default_events).values())
    assert len(per_user) == pytest.approx(1800, abs=60)  # 10% of 2,000 users are cold
    assert per_user[0] >= 20
    assert 85 <= statistics.mean(per_user) <= 125
    assert 50 <= statistics.median(per_user) <= 80
    assert per_user[-1] > 700
    assert per_user[int(len(per_user) * 0.9)] > 2 * statistics.median(per_user)


def test_the_users_who_act_most_come_back_most(default_events: list[dict[str, Any]]) -> None:
    spec = load_spec(DEFAULT_SPEC)
    dataset = generate(spec.dataset)
    events = Counter(e["user"] for e in default_events)

    def histories(user_popularity: str) -> list[int]:
        stream = build_stream(replace(spec, requests=replace(spec.requests, user_popularity=user_popularity)), dataset)
        named = [p.split("/users/")[1].split("?")[0] if "/users/" in p else p.partition("user=")[2] for p in stream.paths]
        return [events[int(user)] for user in named if user]

    by_activity, by_popularity = histories("activity"), histories("popularity")
    assert spec.requests.user_popularity == "activity"
    # drawn in proportion to their events, the users named have sum(n^2)/sum(n) events on average
    expected = sum(n * n for n in events.values()) / sum(events.values())
    warm = [n for n in by_activity if n]
    assert statistics.mean(warm) == pytest.approx(expected, rel=0.1)
    assert statistics.mean(warm) > 1.5 * statistics.mean(n for n in by_popularity if n)


def test_the_default_world_has_sessions_within_its_window(default_events: list[dict[str, Any]]) -> None:
    moments = [e["ts"] for e in default_events]
    assert 0.4 <= zero_gap_share(moments) <= 0.6
    assert min(moments) > DATASET_NOW - 60 * DAY and max(moments) <= DATASET_NOW
    by_day = Counter((DATASET_NOW - t) // DAY for t in moments)
    assert len(by_day) == 60 and max(by_day.values()) < 3 * len(moments) / 60  # spread over the window
    top = Counter(e["item"] for e in default_events).most_common()
    assert top[0][1] > 20 * top[len(top) // 2][1]  # Zipf popularity, as before


def test_the_exponential_shape_is_the_one_it_always_was() -> None:
    assert generate(load_spec(SPECS_DIR / "tiny.toml").dataset).content_hash() == TINY_HASH
    assert generate(load_spec(SPECS_DIR / "network.toml").dataset).content_hash() == NETWORK_HASH


def test_the_shop_sample_is_the_one_it_always_was(tmp_path: Path) -> None:
    assert write_sample(tmp_path / "log.csv") == 5000
    assert hashlib.sha256((tmp_path / "log.csv").read_bytes()).hexdigest() == SHOP_SAMPLE_SHA256


def test_a_seed_gives_the_same_data_and_another_seed_other_data(tmp_path: Path) -> None:
    shaped = DatasetParams(items=300, categories=6, users=120, events_per_user=60, history_shape="heavy", session_events=8)
    assert generate(shaped).content_hash() == generate(shaped).content_hash()
    assert generate(shaped).content_hash() != generate(replace(shaped, seed=43)).content_hash()
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_sample(tmp_path / f"{name}.data", 3000, shape="movielens", seed=seed, items_out=tmp_path / f"{name}.item")
    assert (tmp_path / "a.data").read_bytes() == (tmp_path / "b.data").read_bytes() != (tmp_path / "c.data").read_bytes()
    assert (tmp_path / "a.item").read_bytes() == (tmp_path / "b.item").read_bytes()


def test_the_movielens_sample_has_its_users_and_items(movielens: tuple[list[tuple[int, ...]], bytes]) -> None:
    rows, _ = movielens
    per_user = sorted(Counter(user for user, *_ in rows).values())
    assert len(per_user) == 943 and {user for user, *_ in rows} == set(range(1, 944))
    assert per_user[0] == 20 and statistics.mean(per_user) == pytest.approx(106, abs=0.5)
    assert 50 <= statistics.median(per_user) <= 80 and 500 < per_user[-1] <= 841
    assert len({(user, item) for user, item, *_ in rows}) == len(rows)  # an item rated once per user
    popularity = sorted(Counter(item for _, item, *_ in rows).values(), reverse=True)
    assert all(1 <= item <= 1682 for _, item, *_ in rows)
    assert 400 <= popularity[0] <= 800 and sum(count < 5 for count in popularity) >= 100


def test_the_movielens_sample_has_its_ratings_and_moments(movielens: tuple[list[tuple[int, ...]], bytes]) -> None:
    rows, _ = movielens
    ratings = Counter(rating for _, _, rating, _ in rows)
    for rating, share in enumerate(ML_RATINGS, start=1):
        assert ratings[rating] / len(rows) == pytest.approx(share, abs=0.02)
    moments = [ts for *_, ts in rows]
    assert moments == sorted(moments)  # written in time order
    assert ML_FIRST <= moments[0] < ML_FIRST + DAY and ML_LAST - DAY < moments[-1] <= ML_LAST  # 7 months
    assert 0.4 <= zero_gap_share(moments) <= 0.6


def test_the_movielens_item_file_is_like_u_item(movielens: tuple[list[tuple[int, ...]], bytes]) -> None:
    _, data = movielens
    lines = data.decode("latin-1").splitlines()
    assert len(lines) == 1682 and b"\r" not in data
    for number, line in enumerate(lines, start=1):
        cells = line.split("|")
        assert len(cells) == 24 and cells[0] == str(number) and cells[3] == ""
        assert cells[1].endswith(f"({cells[2][-4:]})") and cells[4].startswith("http://us.imdb.com/M/title-exact?")
        assert set(cells[5:]) <= {"0", "1"} and "1" in cells[5:]
    assert any(not line.isascii() for line in lines) and "é" in data.decode("latin-1")


def test_the_command_writes_either_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample-trace", str(tmp_path / "u.data"), "--shape", "movielens", "--lines", "2000"]) == 0
    assert len((tmp_path / "u.data").read_text().splitlines()) == 2000
    assert main(["sample-trace", str(tmp_path / "x.data"), "--shape", "movielens", "--unix"]) == 2
    assert "--unix applies to --shape shop" in capsys.readouterr().err
    assert main(["sample-trace", str(tmp_path / "log.csv"), "--lines", "300"]) == 0
    assert (tmp_path / "log.csv").read_text().startswith("user,item,rating,timestamp")
    assert main(["sample-trace", str(tmp_path)]) == 2  # a folder is no file to write
    assert capsys.readouterr().err.strip() == f"reclab: error: {tmp_path}: cannot be written (Is a directory)"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[dataset]\nhistory_shape = 'pareto'\n", "dataset.history_shape", "must be one of"),
        ("[dataset]\nhistory_min = 5\n", "dataset.history_min", 'applies to history_shape = "heavy"'),
        ("[dataset]\nhistory_shape = 'heavy'\nevents_per_user = 20\n", "dataset.history_min", "must be below events_per_user"),
        ("[dataset]\nsame_second_share = 0.5\n", "dataset.same_second_share", "applies to sessions"),
        ("[dataset]\nsession_events = 5\nsame_second_share = 1.5\n", "dataset.same_second_share", "must be <= 1.0"),
    ],
)
def test_bad_history_settings_are_rejected(tmp_path: Path, text: str, key: str, reason: str) -> None:
    assert_rejected(load_spec, tmp_path / "spec.toml", text, key, reason)
