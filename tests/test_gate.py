"""The regression gate (`reclab report --compare OLD NEW`) on synthetic result sets: it judges each
variant's ratio to its own baseline, so a slower machine passes and a slower variant fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from reclab.cli import main
from reclab.results.file import ResultsFile
from reclab.results.record import RunRecord
from reclab.run.matrix import BASELINE
from tests.synthetic import result_set, with_bench

TORNADO = BASELINE.with_factor("framework", "tornado")
NO_CACHE = BASELINE.with_factor("cache", "none")
MOTOR = BASELINE.with_factor("driver", "motor")
EFFECTS = {TORNADO: 1.3, NO_CACHE: 8.0, MOTOR: 1.05}


def write(folder: Path, records: list[RunRecord]) -> Path:
    results = ResultsFile(folder / "results.jsonl")
    for r in records:
        results.append(r)
    return folder


def gate(tmp_path: Path, old: list[RunRecord], new: list[RunRecord]) -> int:
    return main(["report", "--compare", str(write(tmp_path / "old", old)), str(write(tmp_path / "new", new))])


def test_a_uniform_7_percent_slowdown_of_every_variant_passes(tmp_path: Path) -> None:
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(EFFECTS, seed=2, slowdown=1.07)) == 0


def test_one_variant_15_percent_slower_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slower = {**EFFECTS, MOTOR: EFFECTS[MOTOR] * 1.15}
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(slower, seed=2)) == 1
    captured = capsys.readouterr()
    assert MOTOR.key in captured.err and TORNADO.key not in captured.err


def test_a_variant_missing_in_new_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    without = {k: v for k, v in EFFECTS.items() if k != TORNADO}
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(without, seed=2)) == 1
    assert "missing in NEW" in capsys.readouterr().out


def test_fewer_than_3_good_repeats_cannot_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gate(tmp_path, result_set(EFFECTS, seed=1), result_set(EFFECTS, seed=2, repeats=2)) == 1
    assert "cannot judge" in capsys.readouterr().out


def test_sets_that_are_not_like_for_like_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other_stream = with_bench(result_set(EFFECTS, seed=2), stream_hash="another")
    assert gate(tmp_path, result_set(EFFECTS, seed=1), other_stream) == 2
    err = capsys.readouterr().err
    assert "not like for like" in err and "stream (s vs another)" in err
