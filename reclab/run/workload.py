"""A spec made ready to run: its dataset, its deterministic request stream, and the stream's file
that the load generator replays (one path per line)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from servers.core.rules import RuleBook
from workloads.dataset import Dataset, generate
from workloads.spec import WorkloadSpec, load_spec
from workloads.stream import RequestStream, build_stream, check_services
from workloads.world import dataset_for


@dataclass(frozen=True)
class PreparedWorkload:
    spec: WorkloadSpec
    dataset: Dataset
    stream: RequestStream
    paths_file: Path


def prepare_workload(spec_path: Path, out_dir: Path, rules: RuleBook | None = None) -> PreparedWorkload:
    """Load the spec (checking its services against `rules` if given), generate its dataset and
    stream, and write the stream to `out_dir/stream-<hash>.txt`."""
    spec = load_spec(spec_path)
    if rules is not None:
        check_services(spec, rules)
    full = generate(spec.dataset)
    stream = build_stream(spec, full)
    dataset = dataset_for(spec, full)  # what the database holds (a trace's replayed events are written live)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths_file = out_dir / f"stream-{stream.hash}.txt"
    paths_file.write_text(stream.text())
    return PreparedWorkload(spec, dataset, stream, paths_file)
