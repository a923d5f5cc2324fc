"""Capacity, server CPU per request and p99 latency of the key server variants, from one quick `reclab bench` run;
and the warmed-up baseline's CPU per request beside its /health, from one `reclab hotpath` run.

`KeyVariants.setup_cache` runs the one-factor-at-a-time matrix once (embedded MongoDB and Valkey,
locust, one repeat, the spec's quick durations); each `track_` reads one variant's figure from it.
Absolute numbers depend on the machine: read the history for changes, compare within a commit.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

import msgspec

from reclab.analysis.summary import Metrics
from reclab.results.file import read_results
from reclab.run.matrix import BASELINE, build_matrix
from servers.core.variant import SELF_SERVED

VARIANTS = [entry.key for entry in build_matrix("ofat", BASELINE)]


def run_reclab(arguments: list[str], timeout_s: float) -> None:
    """Run one reclab command, bounded in time (reclab stops everything it started on SIGTERM)."""
    command = subprocess.Popen([sys.executable, "-m", "reclab.cli", *arguments])
    try:
        command.wait(timeout=timeout_s)
    finally:
        if command.poll() is None:
            command.terminate()
            command.wait(timeout=60)


class KeyVariants:
    timeout = 900
    params: ClassVar[list[str]] = VARIANTS
    param_names: ClassVar[list[str]] = ["variant"]

    def setup_cache(self) -> dict[str, dict[str, float]]:
        out = Path(tempfile.mkdtemp(prefix="reclab-asv-")) / "bench"
        run_reclab(["bench", "--quick", "--repeats", "1", "--no-ceiling", "--out", str(out)], self.timeout - 60)
        records = read_results(out / "results.jsonl")
        if not records:
            return {}
        metrics = Metrics.of(records[0].bench.load, records)
        figures = {}
        for record in records:
            if record.kind == "run" and record.ok:
                figures[record.key] = {
                    name: value
                    for name, metric in (("rps", metrics.capacity), ("p99_ms", metrics.p99), ("cpu_ms", metrics.cost))
                    if metric is not None and (value := metric.of(record)) is not None
                }
        return figures

    def track_throughput(self, figures: dict[str, dict[str, float]], variant: str) -> float:
        return figures.get(variant, {}).get("rps", float("nan"))

    track_throughput.unit = "req/s"  # type: ignore[attr-defined]

    def track_server_cpu_per_request(self, figures: dict[str, dict[str, float]], variant: str) -> float:
        return figures.get(variant, {}).get("cpu_ms", float("nan"))

    track_server_cpu_per_request.unit = "ms"  # type: ignore[attr-defined]

    def track_p99_latency(self, figures: dict[str, dict[str, float]], variant: str) -> float:
        return figures.get(variant, {}).get("p99_ms", float("nan"))

    track_p99_latency.unit = "ms"  # type: ignore[attr-defined]


class WarmHotPath:
    """The baseline's server CPU per request once warmed up, and the same server's /health, from one
    `reclab hotpath` run (every framework): the server's own cost, whatever the database does."""

    timeout = 600
    params: ClassVar[list[str]] = list(SELF_SERVED)
    param_names: ClassVar[list[str]] = ["framework"]

    def setup_cache(self) -> dict[str, dict[str, float]]:
        out = Path(tempfile.mkdtemp(prefix="reclab-asv-hotpath-"))
        run_reclab(["hotpath", "--frameworks", *self.params, "--rounds", "3", "--out", str(out)], self.timeout - 60)
        found = out / "hotpath.json"
        results = msgspec.json.decode(found.read_bytes()) if found.is_file() else []
        return {r["framework"]: r for r in results}

    def track_server_cpu_per_request(self, results: dict[str, dict[str, float]], framework: str) -> float:
        return results.get(framework, {}).get("stream_cpu_ms_per_request", float("nan"))

    track_server_cpu_per_request.unit = "ms"  # type: ignore[attr-defined]

    def track_health_cpu_per_request(self, results: dict[str, dict[str, float]], framework: str) -> float:
        return results.get(framework, {}).get("health_cpu_ms_per_request", float("nan"))

    track_health_cpu_per_request.unit = "ms"  # type: ignore[attr-defined]

    def track_times_health(self, results: dict[str, dict[str, float]], framework: str) -> float:
        return results.get(framework, {}).get("ratio") or float("nan")

    track_times_health.unit = "x"  # type: ignore[attr-defined]
