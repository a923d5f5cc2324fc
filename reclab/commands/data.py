"""`reclab data`: generate a spec's dataset, print its counts and content hash, optionally write it out."""

from __future__ import annotations

import time
from pathlib import Path

from workloads.dataset import generate, write_jsonl
from workloads.spec import load_spec


def data(*, spec: Path, out: Path | None = None) -> int:
    started = time.perf_counter()
    dataset = generate(load_spec(spec).dataset)
    print(f"spec {spec}: {dataset.counts()} in {time.perf_counter() - started:.2f} s")
    print(f"content hash {dataset.content_hash()}")
    if out:
        write_jsonl(dataset, out)
        print(f"written to {out}/")
    return 0
