"""Differential flamegraphs from folded stacks: frames line up across versions and launchers, shares
(not counts) are compared, red marks what B spends more on, blue less, and the reverse picture is A's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reclab.cli import main
from reclab.report.build import difference_links
from reclab.report.flamediff import inclusive_shares, read_folded, write_diff

SVG = "{http://www.w3.org/2000/svg}"
LAUNCH_A = "<module> (servers/sanic_app.py:177);main (servers/sanic_app.py:173);Runner.run (asyncio/runners.py:118)"
LAUNCH_B = "<module> (servers/sanic_app.py:180);main (servers/sanic_app.py:176);Runner.run (asyncio/runners.py:118)"


def folded(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def profiles(tmp_path: Path) -> tuple[Path, Path]:
    a = folded(tmp_path / "a.folded", [f"{LAUNCH_A};serve (x.py:1);db (d.py:5) 60", f"{LAUNCH_A};serve (x.py:1);app (a.py:3) 40"])
    b = folded(  # another version: other line numbers, twice the samples, app's share up from 40% to 70%
        tmp_path / "b.folded",
        [f"{LAUNCH_B};serve (x.py:2);db (d.py:9) 60", f"{LAUNCH_B};serve (x.py:2);app (a.py:4) 140", "not a stack line"],
    )
    return a, b


def fills(svg: Path) -> dict[str, str]:
    """Frame name (from the tooltip) -> fill colour."""
    out = {}
    for group in ET.parse(svg).getroot().iter(f"{SVG}g"):
        title, rect = group.find(f"{SVG}title"), group.find(f"{SVG}rect")
        assert title is not None and title.text is not None and rect is not None
        out[title.text.split(":")[0]] = rect.get("fill", "")
    return out


def test_stacks_start_at_the_event_loop_and_frames_lose_their_line_numbers(profiles: tuple[Path, Path]) -> None:
    a, b = (read_folded(p) for p in profiles)
    assert (
        set(a)
        == set(b)
        == {
            ("Runner.run (asyncio/runners.py)", "serve (x.py)", "db (d.py)"),
            ("Runner.run (asyncio/runners.py)", "serve (x.py)", "app (a.py)"),
        }
    )
    shares_b = inclusive_shares(b)
    assert shares_b[("Runner.run (asyncio/runners.py)", "serve (x.py)", "app (a.py)")] == pytest.approx(0.7)
    assert shares_b[("Runner.run (asyncio/runners.py)",)] == pytest.approx(1.0)


def test_red_where_b_spends_a_larger_share_blue_where_smaller(profiles: tuple[Path, Path], tmp_path: Path) -> None:
    forward, reverse = write_diff(*profiles, "A", "B", tmp_path / "a__vs__b")
    b_shape, a_shape = fills(forward), fills(reverse)
    assert b_shape["app (a.py)"].startswith("rgb(255,") and b_shape["db (d.py)"].endswith(",255)")
    assert a_shape["app (a.py)"].endswith(",255)") and a_shape["db (d.py)"].startswith("rgb(255,")
    assert b_shape["serve (x.py)"] == "rgb(255,255,255)"  # the same share in both: white
    (tmp_path / "flamegraphs").mkdir()
    write_diff(*profiles, "A", "B", tmp_path / "flamegraphs" / "a__vs__b")
    assert len(difference_links(tmp_path)) == 2


def test_an_empty_profile_is_refused(profiles: tuple[Path, Path], tmp_path: Path) -> None:
    empty = folded(tmp_path / "empty.folded", [])
    with pytest.raises(ValueError, match="no stacks"):
        write_diff(profiles[0], empty, "A", "B", tmp_path / "x")


def test_the_flamediff_command_draws_two_files_and_refuses_a_missing_one(profiles: tuple[Path, Path]) -> None:
    a, b = profiles
    assert main(["flamediff", str(a), str(b)]) == 0
    assert (b.parent / "a__vs__b.diff.svg").exists() and (b.parent / "a__vs__b.diff-reverse.svg").exists()
    assert main(["flamediff", str(a), str(b.parent / "missing.folded")]) == 2
