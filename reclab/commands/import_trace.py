"""`reclab import-trace`: a log of interactions made into a workload: the dataset in the lab's
collections (`DIR/dataset/`), the id mappings (`DIR/ids/`), a spec that replays the log in time
order (`DIR/spec.toml`, taken by bench, capacity and serve like any other) and a summary
(`DIR/import.json`). `reclab sample-trace` writes a log to try it on."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from reclab.errors import UsageError
from workloads.dataset import KINDS, DatasetParams, write_jsonl
from workloads.trace_dataset import BuildSettings, ItemInfo, build_dataset, read_items
from workloads.trace_log import Interactions, read_log
from workloads.trace_sample import write_sample

TARGET_RATE = 20.0  # requests per second the recorded mean rate is sped up to, unless --speedup is given
STREAM_COUNT = 20_000


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
    speedup: float | None = None,
    similar_items: int = 20,
    similar_users: int = 10,
) -> int:
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"--out {out} is not empty: choose another folder")
    separator = delimiter.encode().decode("unicode_escape") if delimiter is not None else None  # "\\t": a tab
    if separator is not None and len(separator) != 1:
        raise UsageError(f"--delimiter {delimiter!r}: give one character (\\t for a tab)")
    started = time.perf_counter()
    log = read_log(
        file,
        delimiter=separator,
        columns=columns.split(",") if columns else None,
        header=header,
        kinds=kinds,
        skip_bad=skip_bad,
    )
    read_s = time.perf_counter() - started
    info: dict[str, ItemInfo] = read_items(items) if items else {}
    dataset, categories = build_dataset(log, DatasetParams(), BuildSettings(similar_items, similar_users), info)
    built_s = time.perf_counter() - started
    write_jsonl(dataset, out / "dataset")
    _write_ids(out / "ids", log)
    span_s = int(log.times.max() - log.times.min())
    rate = (len(log.users) - 1) / span_s if span_s else 0.0
    chosen = speedup or (TARGET_RATE / rate if rate else 1.0)
    (out / "spec.toml").write_text(_spec(file, out, log, chosen, rate, span_s))
    summary = {
        "file": str(file),
        "lines": log.lines,
        "interactions": len(log.users),
        "skipped": dict(log.skipped),
        "users": len(log.user_ids),
        "items": len(log.item_ids),
        "kinds": {kind: int((log.kinds == i).sum()) for i, kind in enumerate(KINDS)},
        "span_s": span_s,
        "speedup": chosen,
        "categories": categories,
        "dataset_hash": dataset.content_hash(),
        "counts": dataset.counts(),
        "read_s": round(read_s, 2),
        "built_s": round(built_s, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }
    (out / "import.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    skipped = f"; {sum(log.skipped.values())} lines skipped: {dict(log.skipped)}" if log.skipped else ""
    print(
        f"{file}: {log.lines} lines, {len(log.users)} interactions, {len(log.user_ids)} users, {len(log.item_ids)} items{skipped}"
    )
    print(f"categories: {categories}; dataset {dataset.content_hash()} in {summary['total_s']} s")
    print(
        f"spec: {out / 'spec.toml'} (replayed at {chosen:g}x the recorded pace)  — try: reclab bench {out / 'spec.toml'} --quick"
    )
    return 0


def sample_trace(*, out: Path, lines: int = 5000, seed: int = 7, items_out: Path | None = None, unix: bool = False) -> int:
    write_sample(out, lines, seed=seed, items_out=items_out, iso=not unix)
    print(f"{out}: {lines} interactions" + (f"; items in {items_out}" if items_out else ""))
    return 0


def _write_ids(folder: Path, log: Interactions) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in (("users", log.user_ids), ("items", log.item_ids)):
        (folder / f"{name}.tsv").write_text("".join(f"{n}\t{original}\n" for n, original in enumerate(ids, start=1)))


def _spec(file: Path, out: Path, log: Interactions, speedup: float, rate: float, span_s: int) -> str:
    count = min(len(log.users), STREAM_COUNT)
    warmup = min(300, count // 4)
    return f"""# Imported from {file} by `reclab import-trace`: {len(log.users)} interactions of {len(log.user_ids)} users
# with {len(log.item_ids)} items over {span_s / 86400:.1f} days (mean {rate:.3g}/s). The dataset is in dataset/,
# the original ids in ids/. Requests replay the log in time order: each interaction a personalised
# request for its user, or a request for its item naming the user; the open phase sends them at the
# recorded gaps divided by `speedup`.
name = "trace-{file.stem}"

[dataset]
source = "dataset"

[requests]
source = "trace"
order = "time"            # or "sample": `count` interactions drawn with the seed, sent at the phases' rate
speedup = {speedup:.6g}
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
rate = {TARGET_RATE:g}                 # (the trace's gaps set the pace; this is the nominal rate)
duration_s = 4
quick_duration_s = 2

[[load.phases]]
name = "capacity"
mode = "closed"
duration_s = 4
quick_duration_s = 2
"""
