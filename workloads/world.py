"""The dataset a spec's database is loaded with (`dataset_for`), which is not always the one its stream
is drawn from (`workloads.dataset.generate`).

A trace replayed in time order with writes (`[requests] trace_writes`, the default) sends each
interaction as a write at its recorded moment, so the database must not hold them already: the
events from the replay window's first one onward (in time order, ties by event id) are left out of
the loaded dataset, which then has a content hash of its own. Every other spec loads its dataset as
generated. The stream is still built from the whole dataset (`workloads.stream.build_stream`).
"""

from __future__ import annotations

from workloads.dataset import Dataset, generate
from workloads.spec import WorkloadSpec
from workloads.stream import replay_start


def dataset_for(spec: WorkloadSpec, full: Dataset | None = None) -> Dataset:
    """What the database is loaded with for `spec`; `full`: the spec's dataset if already generated."""
    dataset = full if full is not None else generate(spec.dataset)
    mix = spec.requests
    events = dataset.collections["events"]
    if not mix.replays_writes or not events:
        return dataset
    ordered = sorted(events, key=lambda e: (e["ts"], e["_id"]))
    first = replay_start(mix, [e["ts"] for e in ordered], spec.path)
    replayed = {e["_id"] for e in ordered[first:]}
    meta = [{**dataset.collections["meta"][0], "replayed_from": first}]
    kept = [e for e in events if e["_id"] not in replayed]
    loaded = Dataset(dataset.params, {**dataset.collections, "events": kept, "meta": meta})
    meta[0]["hash"] = loaded.content_hash()
    return loaded
