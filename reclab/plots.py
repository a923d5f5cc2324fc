"""The report's plots (matplotlib, written as PNG files beside the report)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from reclab.analysis import VariantSummary

PERCENTILE_TICKS = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99)


def _short(key: str) -> str:
    return key.replace("/delay=0ms", "").replace("/pymongo", "")


def throughput(summaries: dict[str, VariantSummary], path: Path) -> Path:
    """Mean throughput per variant with its 95% interval over repeats."""
    keys = [k for k, s in summaries.items() if s.runs]
    means: list[float] = []
    errors: list[list[float]] = [[], []]
    for key in keys:
        interval = summaries[key].throughput()
        assert interval is not None
        means.append(interval.value)
        errors[0].append(interval.value - (interval.low if interval.low is not None else interval.value))
        errors[1].append((interval.high if interval.high is not None else interval.value) - interval.value)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(keys) + 1.5))
    ax.barh(range(len(keys)), means, xerr=errors, color="#4c72b0", capsize=3)
    ax.set_yticks(range(len(keys)), [_short(k) for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("throughput (req/s), mean and 95% interval over repeats")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_curves(summaries: dict[str, VariantSummary], path: Path) -> Path:
    """HDR-style percentile curves: latency (log) against 1 / (1 - percentile) (log)."""
    fig, ax = plt.subplots(figsize=(10, 5.5))
    for key, summary in summaries.items():
        histogram = summary.merged_histogram()
        if histogram is None or histogram.get_total_count() == 0:
            continue
        xs, ys = [], []
        for percentile in [p / 10 for p in range(0, 1000)] + [99.9, 99.95, 99.99]:
            xs.append(1.0 / (1.0 - percentile / 100.0))
            ys.append(histogram.get_value_at_percentile(percentile) / 1000.0)
        ax.plot(xs, ys, label=_short(key), linewidth=1.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1.0 / (1.0 - p / 100.0) for p in PERCENTILE_TICKS], [f"{p:g}%" for p in PERCENTILE_TICKS])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def server_timing(summaries: dict[str, VariantSummary], path: Path) -> Path:
    """Server-side time per request, stacked: db, cache, app (means over the measurement window)."""
    keys = [k for k, s in summaries.items() if s.runs]
    stages = {stage: [summaries[k].median(f"server_timing_ms.{stage}") or 0.0 for k in keys] for stage in ("db", "cache", "app")}
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(keys) + 1.5))
    left = [0.0] * len(keys)
    for stage, color in (("db", "#c44e52"), ("cache", "#dd8452"), ("app", "#55a868")):
        ax.barh(range(len(keys)), stages[stage], left=left, label=stage, color=color)
        left = [a + b for a, b in zip(left, stages[stage], strict=True)]
    ax.set_yticks(range(len(keys)), [_short(k) for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("server time per request (ms): db, cache, app (db and cache overlap when gathered)")
    ax.legend(fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
