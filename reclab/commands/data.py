"""`reclab data`: generate the dataset a spec's database is loaded with; print its counts and content hash, maybe write it."""

from __future__ import annotations

import time
from pathlib import Path

from workloads.dataset import write_jsonl
from workloads.spec import load_spec
from workloads.world import dataset_for


def data(*, spec: Path, out: Path | None = None) -> int:
    started = time.perf_counter()
    dataset = dataset_for(load_spec(spec))
    print(f"spec {spec}: {dataset.counts()} in {time.perf_counter() - started:.2f} s")
    print(f"content hash {dataset.content_hash()}")
    if out:
        write_jsonl(dataset, out)
        print(f"written to {out}/")
    return 0
