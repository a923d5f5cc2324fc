"""Throughput and p99 latency of the key server variants, from one quick `reclab bench` run.

`setup_cache` runs the one-factor-at-a-time matrix once (embedded MongoDB and Valkey, locust,
one repeat, the spec's quick durations); each `track_` reads one variant's figure from it.
Absolute numbers depend on the machine: read the history for changes, compare within a commit.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

from reclab.results.file import read_results
from reclab.run.matrix import BASELINE, build_matrix

VARIANTS = [config.key for config in build_matrix("ofat", BASELINE)]


class KeyVariants:
    timeout = 900
    params: ClassVar[list[str]] = VARIANTS
    param_names: ClassVar[list[str]] = ["variant"]

    def setup_cache(self) -> dict[str, dict[str, float]]:
        out = Path(tempfile.mkdtemp(prefix="reclab-asv-")) / "bench"
        argv = [sys.executable, "-m", "reclab.cli", "bench", "--quick", "--repeats", "1", "--no-ceiling", "--out", str(out)]
        bench = subprocess.Popen(argv)
        try:
            bench.wait(timeout=self.timeout - 60)
        finally:
            if bench.poll() is None:
                bench.terminate()  # reclab bench stops everything it started on SIGTERM
                bench.wait(timeout=60)
        figures = {}
        for record in read_results(out / "results.jsonl"):
            m = record.measured
            if record.kind == "run" and m is not None and m.latency_us is not None:
                figures[record.key] = {"rps": m.throughput_rps, "p99_ms": m.latency_us.p99 / 1000}
        return figures

    def track_throughput(self, figures: dict[str, dict[str, float]], variant: str) -> float:
        return figures[variant]["rps"] if variant in figures else float("nan")

    track_throughput.unit = "req/s"  # type: ignore[attr-defined]

    def track_p99_latency(self, figures: dict[str, dict[str, float]], variant: str) -> float:
        return figures[variant]["p99_ms"] if variant in figures else float("nan")

    track_p99_latency.unit = "ms"  # type: ignore[attr-defined]
