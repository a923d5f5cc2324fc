"""The core's CPU paths on fixed data (no I/O): app-side grouping, filtering, scoring, serialising.

These are the parts of a request the application server pays for in CPU whatever the database;
their history shows code changes, not machine noise from a load test.
"""

from __future__ import annotations

import orjson

from servers.core.recommender import Exclusions, merge_scores, top_candidates
from servers.core.rules import load_rules
from servers.core.store import group_events
from workloads.corepaths import build_inputs
from workloads.dataset import DATASET_NOW, DatasetParams, generate


class CorePaths:
    def setup(self) -> None:
        self.inputs = build_inputs()
        self.rule = load_rules().rules["home/for-you"]

    def time_group_2000_events_in_the_app(self) -> None:
        group_events(self.inputs.events)

    def time_exclusions_dislikes_views_rolling(self) -> None:
        Exclusions.of(self.inputs.activity, self.rule, DATASET_NOW)

    def time_merge_scores_of_20_seeds(self) -> None:
        merge_scores(self.inputs.seeds, self.inputs.similar)

    def time_top_60_candidates(self) -> None:
        top_candidates(self.inputs.scores, set(), 60)

    def time_serialise_100_picks(self) -> None:
        orjson.dumps({"items": [p.as_json() for p in self.inputs.picks]})


class Dataset:
    timeout = 120

    def peakmem_generate_default_dataset(self) -> None:
        generate(DatasetParams())

    def time_generate_small_dataset(self) -> None:
        generate(DatasetParams(items=500, categories=10, users=200))
