"""The report's plots (matplotlib, written as PNG files beside the report), drawn from numbers given."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from reclab.analysis.stats import Interval
from reclab.analysis.verdicts import Kind, Verdict

PERCENTILE_TICKS = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99)


VERDICT_COLOURS = {Kind.FASTER: "#1a7f37", Kind.SLOWER: "#b42318", Kind.EQUIVALENT: "#4c72b0"}  # others: grey


def verdict_colour(verdict: Verdict) -> str:
    """The colour of a verdict's kind in every report plot."""
    return VERDICT_COLOURS.get(verdict.kind, "#777777")


def short_key(key: str) -> str:
    """A variant's key as plots label it (the default driver left out)."""
    return key.replace("/pymongo", "")


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _variant_bars(keys: list[str]) -> tuple[Figure, Axes]:
    """A figure with one horizontal bar row per variant, first on top."""
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(keys) + 1.5))
    ax.set_yticks(range(len(keys)), [short_key(k) for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    return fig, ax


def interval_bars(intervals: dict[str, Interval], xlabel: str, path: Path) -> Path:
    """One bar per variant: a mean with its 95% interval over repeats."""
    keys = list(intervals)
    means = [intervals[k].value for k in keys]
    errors: list[list[float]] = [
        [i.value - (i.low if i.low is not None else i.value) for i in intervals.values()],
        [(i.high if i.high is not None else i.value) - i.value for i in intervals.values()],
    ]
    fig, ax = _variant_bars(keys)
    ax.barh(range(len(keys)), means, xerr=errors, color="#4c72b0", capsize=3)
    ax.set_xlabel(xlabel)
    return _save(fig, path)


def latency_curves(curves: dict[str, list[tuple[float, float]]], path: Path) -> Path:
    """HDR-style percentile curves: latency (log) against 1 / (1 - percentile) (log)."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for key, points in curves.items():
        if not points:
            continue
        xs = [1.0 / (1.0 - percentile / 100.0) for percentile, _ in points]
        ax.plot(xs, [ms for _, ms in points], label=short_key(key), linewidth=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1.0 / (1.0 - p / 100.0) for p in PERCENTILE_TICKS], [f"{p:g}%" for p in PERCENTILE_TICKS])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def server_timing(stages_ms: dict[str, dict[str, float]], path: Path) -> Path:
    """Server-side time per request, stacked: db, cache, app (means over the measurement window)."""
    keys = list(stages_ms)
    stages = {stage: [stages_ms[k].get(stage, 0.0) for k in keys] for stage in ("db", "cache", "app")}
    fig, ax = _variant_bars(keys)
    left = [0.0] * len(keys)
    for stage, color in (("db", "#c44e52"), ("cache", "#dd8452"), ("app", "#55a868")):
        ax.barh(range(len(keys)), stages[stage], left=left, label=stage, color=color)
        left = [a + b for a, b in zip(left, stages[stage], strict=True)]
    ax.set_xlabel("server time per request (ms): db, cache, app (db and cache overlap when gathered)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def network(points: dict[str, list[tuple[float, float]]], path: Path) -> Path:
    """p50 latency against emulated delay, one line per strategy."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, series in points.items():
        xs, ys = zip(*sorted(series), strict=True)
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xlabel("emulated delay to the database (ms per round trip)")
    ax.set_ylabel("p50 latency (ms)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def latency_load(
    steps: list[tuple[float, float, float, bool]], objective_ms: float, knee: float | None, title: str, path: Path
) -> Path:
    """One variant's capacity search: p50 and p99 (log) against the offered rate, a step per point
    (filled: it met the objective), the objective as a line and the capacity (the knee) marked."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = sorted(steps)
    rates = [rate for rate, *_ in points]
    ax.plot(rates, [p50 for _, p50, _, _ in points], color="#4c72b0", linewidth=1, label="p50")
    ax.plot(rates, [p99 for _, _, p99, _ in points], color="#c44e52", linewidth=1, label="p99")
    for rate, p50, p99, passed in points:
        face = "#c44e52" if passed else "white"
        ax.plot([rate], [p99], marker="o", color="#c44e52", markerfacecolor=face)
        ax.plot([rate], [p50], marker="o", color="#4c72b0", markerfacecolor="#4c72b0" if passed else "white")
    ax.axhline(objective_ms, color="black", linestyle="--", linewidth=1, label=f"objective: p99 {objective_ms:g} ms")
    if knee is not None:
        ax.axvline(knee, color="#55a868", linewidth=1.5, label=f"capacity {knee:.0f}/s")
    ax.set_yscale("log")
    ax.set_xlabel("offered load (arrivals per second, open loop)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(short_key(title), fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def shard_load(per_shard: dict[str, list[float]], path: Path) -> Path:
    """Operations per request on each shard: a group of bars per variant, a bar per shard."""
    keys = list(per_shard)
    shards = max(len(v) for v in per_shard.values())
    width = 0.8 / shards
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(keys) + 2), 4.5))
    for shard in range(shards):
        xs = [k + (shard - (shards - 1) / 2) * width for k in range(len(keys))]
        ax.bar(xs, [per_shard[key][shard] for key in keys], width, label=f"shard {shard}")
    ax.set_xticks(range(len(keys)), [short_key(k) for k in keys], fontsize=7, rotation=10)
    ax.set_ylabel("database operations per request")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def history_cost(series: dict[str, list[tuple[str, float, float]]], buckets: list[str], path: Path) -> Path:
    """Per request, by the size of the user's history (a column per bucket): the server's app time
    (left) and its database wait (right), a line per variant."""
    fig, (app, db) = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
    colours = [plt.get_cmap("tab20")(i) for i in range(20)]
    for number, (key, points) in enumerate(series.items()):
        at = {label: (app_ms, db_ms) for label, app_ms, db_ms in points}
        xs = [i for i, label in enumerate(buckets) if label in at]
        style = {"marker": "o", "linewidth": 1, "label": short_key(key), "color": colours[number % len(colours)]}
        app.plot(xs, [at[buckets[i]][0] for i in xs], **style)
        db.plot(xs, [at[buckets[i]][1] for i in xs], **style)
    for ax, what in ((app, "app ms per request (outside database and cache calls)"), (db, "db wait ms per request")):
        ax.set_xticks(range(len(buckets)), buckets, fontsize=8)
        ax.set_xlabel("events in the user's history")
        ax.set_ylabel(what)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.grid(alpha=0.3, which="both")
    app.legend(fontsize=6, loc="upper left")
    return _save(fig, path)


def goodput_curves(series: dict[str, list[tuple[float, Interval]]], capacity: float, multiples: list[float], path: Path) -> Path:
    """Goodput against offered load, a line per admission mode (mean and 95% interval over repeats, cut
    at 1.3 x the highest of the capacity and the means), the ideal min(offered, capacity) dashed, the
    capacity marked; the multiples of it on the top axis."""
    fig, ax = plt.subplots(figsize=(8, 5))
    top = max([capacity * max(multiples, default=1.0), *(x for points in series.values() for x, _ in points)])
    ax.plot([0, capacity, top], [0, capacity, capacity], color="black", linestyle="--", linewidth=1,
            label="ideal: min(offered, capacity)")  # fmt: skip
    ax.axvline(capacity, color="#55a868", linewidth=1, label=f"capacity {capacity:.0f} req/s")
    for number, (label, points) in enumerate(series.items()):
        points = sorted(points, key=lambda point: point[0])
        xs, means = [x for x, _ in points], [i.value for _, i in points]
        low = [i.value - (i.low if i.low is not None else i.value) for _, i in points]
        high = [(i.high if i.high is not None else i.value) - i.value for _, i in points]
        ax.errorbar(xs, means, yerr=[low, high], marker="o", capsize=3, linewidth=1.5, label=label, color=f"C{number}")
    ax.set_xlim(0, top * 1.05)
    highest = max([capacity, *(i.value for points in series.values() for _, i in points)])
    ax.set_ylim(0, highest * 1.3)  # wide intervals (few repeats) are cut at the top rather than flatten the lines
    ax.set_xlabel("offered load (arrivals per second, open loop)")
    ax.set_ylabel("goodput (2xx within the objective, req/s)")
    multiple_axis = ax.twiny()
    multiple_axis.set_xlim(ax.get_xlim())
    multiple_axis.set_xticks([m * capacity for m in multiples], [f"{m:g}x" for m in multiples])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def tail_latencies(
    series: dict[str, list[tuple[float, float | None, float | None]]], objective_ms: float, shed_ms: float, path: Path
) -> Path:
    """p99 of the 2xx answers (left) and of the shed answers (right) against the offered multiple, a
    line per admission mode, each limit as a dashed line."""
    fig, (ok, shed) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    multiples = sorted({point[0] for points in series.values() for point in points})
    for number, (label, points) in enumerate(series.items()):  # a mode keeps its colour on both sides
        for ax, pick in ((ok, 1), (shed, 2)):
            shown = sorted((point[0], value) for point in points if (value := point[pick]) is not None)
            if shown:
                ax.plot([m for m, _ in shown], [v for _, v in shown], marker="o", linewidth=1.2, label=label,
                        color=f"C{number}")  # fmt: skip
    for ax, limit, what in ((ok, objective_ms, "p99 of 2xx answers (ms)"), (shed, shed_ms, "p99 of shed answers (ms)")):
        ax.axhline(limit, color="black", linestyle="--", linewidth=1, label=f"limit {limit:g} ms")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(multiples, [f"{m:g}x" for m in multiples])
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.set_xlabel("offered load (multiple of the capacity)")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return _save(fig, path)


def forest(rows: list[tuple[str, Interval, Verdict]], margin: float, xlabel: str, path: Path) -> Path:
    """Each comparison's ratio with its 95% interval, a row each (label, ratio, verdict), against the
    shaded band of 1 ± margin (the static twin of the page's interactive forest plot)."""
    labels = [label for label, _, _ in rows]
    fig, ax = _variant_bars(labels)
    ax.axvspan(1 - margin, 1 + margin, color="#4c72b0", alpha=0.12, label=f"within ±{margin:.0%}")
    ax.axvline(1.0, color="black", linewidth=1)
    for y, (_, interval, verdict) in enumerate(rows):
        colour = verdict_colour(verdict)
        low = interval.low if interval.low is not None else interval.value
        high = interval.high if interval.high is not None else interval.value
        ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot([interval.value], [y], marker="o", color=colour)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
