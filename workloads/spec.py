"""Workload specs (TOML): the dataset to generate, and (for `reclab bench`) the request mix and load.

A bad spec is rejected with the file, the key and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workloads.dataset import DatasetParams
from workloads.tomlcheck import Table, read_toml

SPECS_DIR = Path(__file__).resolve().parent / "specs"
DEFAULT_SPEC = SPECS_DIR / "default.toml"


@dataclass(frozen=True)
class WorkloadSpec:
    path: str
    name: str
    dataset: DatasetParams


def load_spec(path: Path = DEFAULT_SPEC) -> WorkloadSpec:
    top = Table(path, "", read_toml(path))
    name = top.string("name", Path(path).stem)
    dataset = DatasetParams.from_table(top.table("dataset", {}))
    top.reject_unknown()
    return WorkloadSpec(path=str(path), name=name, dataset=dataset)
