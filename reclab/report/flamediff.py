"""Differential flamegraphs: two profiles of folded stacks (py-spy's `raw` format, one `frame;frame;...
count` line per stack) drawn as one picture: the shape of B (each frame as wide as its share of B's
samples), each frame coloured by how its share changed from A to B — red where B spends more, blue
where it spends less, white where they agree. Shares, not sample counts, so that recordings of
different lengths or rates compare. A frame B no longer has at all is not in B's shape: the reverse
picture (A's shape, coloured by the same change) shows it.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

Stacks = Counter[tuple[str, ...]]
WIDTH, FRAME_H, FONT_PX, MIN_SHARE = 1200, 17, 11, 0.001


LINE_NUMBER = re.compile(r":\d+\)$")
EVENT_LOOP = "Runner.run ("  # asyncio.run's frame: what is above it is how the process started, not what it serves


def read_folded(path: Path) -> Stacks:
    """Folded stacks: `frame;frame;... count` per line (blank and malformed lines are skipped), each
    cut to start at the event loop and its frames named without line numbers, so that two servers,
    or two versions of one, line up on the code they share."""
    stacks: Stacks = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            frames = [LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
            starts = [i for i, frame in enumerate(frames) if frame.startswith(EVENT_LOOP)]
            stacks[tuple(frames[starts[-1] if starts else 0 :])] += int(count)
    return stacks


def inclusive_shares(stacks: Stacks) -> dict[tuple[str, ...], float]:
    """Each stack prefix (a frame at its place in the call tree) and its share of all samples."""
    total = sum(stacks.values()) or 1
    shares: dict[tuple[str, ...], float] = {}
    for stack, count in stacks.items():
        for depth in range(1, len(stack) + 1):
            prefix = stack[:depth]
            shares[prefix] = shares.get(prefix, 0.0) + count / total
    return shares


@dataclass
class Frame:
    path: tuple[str, ...]
    share: float  # of the drawn profile
    change: float  # share in the drawn profile minus share in the other, in points of all samples
    children: list[Frame] = field(default_factory=list)


def _tree(drawn: dict[tuple[str, ...], float], other: dict[tuple[str, ...], float]) -> list[Frame]:
    frames = {path: Frame(path, share, share - other.get(path, 0.0)) for path, share in drawn.items() if share >= MIN_SHARE}
    roots: list[Frame] = []
    for path in sorted(frames):
        parent = frames.get(path[:-1])
        (parent.children if parent else roots).append(frames[path])
    return roots


def _colour(change: float, scale: float) -> str:
    strength = min(1.0, abs(change) / scale) if scale else 0.0
    fade = round(255 * (1 - strength))
    return f"rgb(255,{fade},{fade})" if change > 0 else f"rgb({fade},{fade},255)"


def render(drawn: Stacks, other: Stacks, title: str, subtitle: str) -> str:
    """An SVG of `drawn`'s shape coloured by the change from `other` to `drawn`."""
    drawn_shares, other_shares = inclusive_shares(drawn), inclusive_shares(other)
    roots = _tree(drawn_shares, other_shares)
    scale = max((abs(f.change) for f in _walk(roots)), default=0.0)
    rects: list[str] = []
    depth_max = 0

    def place(frames: list[Frame], x: float, depth: int) -> None:
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        for frame in frames:
            width = frame.share * WIDTH
            y = 40 + depth * FRAME_H
            name = frame.path[-1]
            tip = f"{name}: {frame.share:.2%} of samples here, {frame.change * 100:+.2f} points against the other profile"
            label = html.escape(name[: int(width / (FONT_PX * 0.6))]) if width > 3 * FONT_PX else ""
            rects.append(
                f'<g><title>{html.escape(tip)}</title><rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{FRAME_H - 1}" '
                f'fill="{_colour(frame.change, scale)}" stroke="#ccc" stroke-width="0.3"/>'
                f'<text x="{x + 2:.2f}" y="{y + FRAME_H - 5}" font-size="{FONT_PX}">{label}</text></g>'
            )
            place(frame.children, x, depth + 1)
            x += width

    place(roots, 0.0, 0)
    height = 40 + (depth_max + 1) * FRAME_H + 10
    head = (
        f'<text x="4" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>'
        f'<text x="4" y="32" font-size="11">{html.escape(subtitle)}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace">'
        f'<rect width="100%" height="100%" fill="white"/>{head}{"".join(rects)}</svg>'
    )


def _walk(frames: list[Frame]) -> list[Frame]:
    out = []
    for frame in frames:
        out += [frame, *_walk(frame.children)]
    return out


def write_diff(before: Path, after: Path, label_a: str, label_b: str, out: Path) -> tuple[Path, Path]:
    """OUT.diff.svg (B's shape, red: B spends more) and OUT.diff-reverse.svg (A's shape, red: A spends more)."""
    a, b = read_folded(before), read_folded(after)
    if not a or not b:
        raise ValueError(f"no stacks in {before if not a else after}")
    forward = out.with_name(out.name + ".diff.svg")
    reverse = out.with_name(out.name + ".diff-reverse.svg")
    counts = f"A {sum(a.values())} samples, B {sum(b.values())} samples"
    forward.write_text(render(b, a, f"B = {label_b}, against A = {label_a}", f"red: B spends more, blue: less ({counts})"))
    reverse.write_text(render(a, b, f"A = {label_a}, against B = {label_b}", f"red: A spends more, blue: less ({counts})"))
    return forward, reverse
