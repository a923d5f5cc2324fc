"""`reclab import-trace`: a log of interactions made into a workload: the dataset in the lab's
collections (`DIR/dataset/`), the id mappings (`DIR/ids/`), a spec that replays the log in time
order (`DIR/spec.toml`, taken by bench, capacity and serve like any other) and a summary
(`DIR/import.json`). The whole log is read and checked (`workloads.trace_log`): bad lines fail the
import, each named with its line number and reason, or with `--skip-bad` are left out and written
to `DIR/rejects.tsv` (line, reason, raw text escaped). Everything is written into a temporary
sibling of DIR, moved into place at the end and removed on any failure, so DIR never holds half an
import. `reclab sample-trace` writes a log to try it on."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from reclab.errors import LabError, UsageError
from workloads.dataset import KINDS, Dataset, DatasetParams, write_jsonl
from workloads.trace_dataset import BuildSettings, ItemInfo, build_dataset, read_items
from workloads.trace_log import (
    Interactions,
    describe_bad,
    escape_raw,
    escape_text,
    iso_time,
    lines_count,
    parse_scale,
    read_log,
    text_codec,
)
from workloads.trace_sample import write_sample

TARGET_RATE = 20.0  # the open phase's nominal rate, unless --rate is given
STREAM_COUNT = 20_000
REJECTS = "rejects.tsv"


def import_trace(
    *,
    file: Path,
    out: Path,
    delimiter: str | None = None,
    columns: str | None = None,
    header: bool | None = None,
    kinds: str | None = None,
    items: Path | None = None,
    skip_bad: bool = False,
    rate: float = TARGET_RATE,
    similar_items: int = 20,
    similar_users: int = 10,
    encoding: str = "utf-8",
    rating_scale: str | None = None,
) -> int:
    _check_out(out)
    if not 0.1 <= rate <= 1_000_000:
        raise UsageError(f"--rate {rate:g}: give requests per second from 0.1 to 1,000,000")
    separator = _separator(delimiter)
    scale = _scale(rating_scale)
    _check_encoding(encoding)
    info: dict[str, ItemInfo] = read_items(items, encoding) if items else {}  # a bad item file fails before a long read
    started = time.perf_counter()
    log = read_log(
        file,
        delimiter=separator,
        columns=columns.split(",") if columns else None,
        header=header,
        kinds=kinds,
        skip_bad=skip_bad,
        encoding=encoding,
        rating_scale=scale,
    )
    read_s = time.perf_counter() - started
    dataset, categories = build_dataset(log, DatasetParams(), BuildSettings(similar_items, similar_users), info)
    built_s = time.perf_counter() - started
    span_s = int(log.times.max() - log.times.min())
    mean_rate = (len(log.users) - 1) / span_s if span_s else 0.0
    with _staging(out) as folder:
        write_jsonl(dataset, folder / "dataset")
        _write_ids(folder / "ids", log)
        if skip_bad:
            _write_rejects(folder / REJECTS, log, encoding)
        (folder / "spec.toml").write_text(_spec(file, log, rate, mean_rate, span_s))
        summary = _summary(file, out, log, dataset, skip_bad, encoding) | {
            "span_s": span_s, "mean_rate": mean_rate, "rate": rate, "categories": categories, "read_s": round(read_s, 2),
            "built_s": round(built_s, 2), "total_s": round(time.perf_counter() - started, 2),
        }  # fmt: skip
        (folder / "import.json").write_bytes(msgspec.json.format(msgspec.json.encode(summary), indent=2))
    _print_summary(file, out, log, skip_bad)
    print(f"categories: {categories}; dataset {dataset.content_hash()} in {summary['total_s']} s")
    print(
        f"spec: {out / 'spec.toml'} (the log's gaps paced to {rate:g}/s in each window)  — "
        f"try: reclab bench {out / 'spec.toml'} --quick"
    )
    return 0


def _check_out(out: Path) -> None:
    """`--out` must be a new folder, or an empty one, somewhere it can be made (checked before any reading)."""
    try:
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file: give a folder (new, or empty)")
        if out.is_dir() and any(out.iterdir()):
            raise UsageError(f"--out {out} is not empty: choose another folder")
        parent = next((p for p in out.absolute().parents if p.exists()), Path("/"))
    except OSError as error:
        raise UsageError(f"--out {out}: cannot be used ({error.strerror or error})") from None
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot be made in {parent} (not a writable folder)")


def _separator(delimiter: str | None) -> str | None:
    """The delimiter as one character (`\\t` given for a tab), or None to sniff it."""
    if delimiter is None:
        return None
    try:
        separator = delimiter if len(delimiter) == 1 else delimiter.encode().decode("unicode_escape")
    except UnicodeDecodeError:
        separator = ""
    if len(separator) != 1 or separator in '"\r\n':
        raise UsageError(f"--delimiter {delimiter!r}: give one character other than a quote or a line end (\\t for a tab)")
    return separator


def _scale(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        return parse_scale(text)
    except ValueError as error:
        raise UsageError(f"--rating-scale {text!r}: {error}") from None


def _check_encoding(encoding: str) -> None:
    try:
        text_codec(encoding)
    except ValueError as error:
        raise UsageError(f"--encoding: {error}") from None


@contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A new sibling folder of `out` to write into, moved into place as `out` at the end (an empty
    `out` is replaced) and removed on any failure."""
    target = out.absolute()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = target.parent / f".{target.name}.partial-{os.getpid()}"
        folder.mkdir()
    except OSError as error:
        raise UsageError(f"--out {out}: cannot be made ({error.strerror or error})") from None
    try:
        yield folder
        os.replace(folder, target)
    except OSError as error:
        shutil.rmtree(folder, ignore_errors=True)
        raise LabError(f"--out {out}: cannot be written ({error.strerror or error}); nothing was left there") from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _write_rejects(path: Path, log: Interactions, encoding: str) -> None:
    """Every bad line: its number, the reason and its raw text, tab-separated, one record per line."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("line\treason\traw\n")
        for bad in log.bad:
            handle.write(f"{bad.line}\t{escape_text(bad.reason)}\t{escape_raw(bad.raw, encoding)}\n")


def _summary(file: Path, out: Path, log: Interactions, dataset: Dataset, skip_bad: bool, encoding: str) -> dict[str, Any]:
    return {
        "file": str(file),
        "encoding": encoding,
        "lines": log.lines,
        "blank": log.blank,
        "bad": sum(log.skipped.values()),
        "interactions": len(log.users),
        "skipped": dict(log.skipped),
        "rejects": str(out / REJECTS) if skip_bad else None,
        "users": len(log.user_ids),
        "items": len(log.item_ids),
        "kinds": {kind: int((log.kinds == i).sum()) for i, kind in enumerate(KINDS)},
        "rating_scale": list(log.rating_scale) if log.rating_scale else None,
        "rating_scale_from": log.rating_scale_from or None,
        "time_bulk": [iso_time(t) for t in log.time_bulk],
        "dataset_hash": dataset.content_hash(),
        "counts": dataset.counts(),
    }


def _print_summary(file: Path, out: Path, log: Interactions, skip_bad: bool) -> None:
    bad = sum(log.skipped.values())
    print(
        f"{file}: {log.lines} lines: {len(log.users)} interactions, {log.blank} blank, {bad} bad; "
        f"{len(log.user_ids)} users, {len(log.item_ids)} items"
    )
    if bad:
        reasons = "; ".join(f"{reason}: {count}" for reason, count in log.skipped.most_common())
        print(f"{lines_count(bad, 'bad line')} left out ({reasons}), every one in {out / REJECTS}:\n{describe_bad(log.bad, bad)}")
    elif skip_bad:
        print(f"no bad lines ({out / REJECTS} is empty)")
    if log.rating_scale:
        print(f"ratings: scale {log.rating_scale[0]:g}..{log.rating_scale[1]:g} ({log.rating_scale_from})")


def sample_trace(
    *, out: Path, shape: str = "shop", lines: int | None = None, seed: int = 7, items_out: Path | None = None, unix: bool = False
) -> int:
    """Write a seeded sample log of `shape` (workloads.trace_sample): shop (a CSV, 5,000 lines by
    default) or movielens (like MovieLens 100k's u.data, 100,000 lines by default)."""
    if unix and shape != "shop":
        raise UsageError("--unix applies to --shape shop (a movielens log is in unix seconds)")
    try:
        lines = write_sample(out, lines or 0, shape=shape, seed=seed, items_out=items_out, iso=not unix)
    except OSError as error:
        raise UsageError(f"{error.filename or out}: cannot be written ({error.strerror or error})") from None
    print(f"{out}: {lines} interactions" + (f"; items in {items_out}" if items_out else ""))
    return 0


def _write_ids(folder: Path, log: Interactions) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in (("users", log.user_ids), ("items", log.item_ids)):
        (folder / f"{name}.tsv").write_text("".join(f"{n}\t{original}\n" for n, original in enumerate(ids, start=1)))


def _spec(file: Path, log: Interactions, rate: float, mean_rate: float, span_s: int) -> str:
    count = max(1, min(len(log.users) // 5, STREAM_COUNT))  # the last fifth arrives live, the rest is loaded
    start = len(log.users) - count
    pad = " " * max(1, 18 - len(str(start)))
    warmup = min(300, count // 4)
    return f"""# Imported from {file} by `reclab import-trace`: {len(log.users)} interactions of {len(log.user_ids)} users
# with {len(log.item_ids)} items over {span_s / 86400:.1f} days (mean {mean_rate:.3g}/s). The dataset is in dataset/,
# the original ids in ids/. Requests replay the log in time order from `start`: each interaction is
# written (POST /events) at its moment, and half of them are followed by a read: a personalised request
# for its user, or a request for its item naming the user. The database holds the log before `start`
# (trace_writes = false: every interaction a read, the whole log loaded). An open phase sends its entries at
# their recorded gaps, scaled in each window so that it offers the phase's `rate` (bursts stay bursts;
# events of one second are spread across it; a long pause is shortened to 10 mean gaps of its window).
name = "trace-{file.stem}"

[dataset]
source = "dataset"

[requests]
source = "trace"
order = "time"            # or "sample": `count` interactions drawn with the seed, sent at the phases' rate
start = {start}{pad}# the replay's first interaction (a position in time order), or start_time = "2024-05-01T00:00:00Z"
count = {count}
seed = 1234
user_share = 0.5
item_services = {{ "groceries/fruit" = 1.0 }}
user_services = {{ "home/for-you" = 1.0 }}

[load]
arrival = "trace"
users = 16
warmup_requests = {warmup}
quick_warmup_requests = {min(150, warmup)}

[[load.phases]]
name = "latency"
mode = "open"
rate = {rate:g}
duration_s = 4
quick_duration_s = 2

[[load.phases]]
name = "capacity"
mode = "closed"
duration_s = 4
quick_duration_s = 2
"""
