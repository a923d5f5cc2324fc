"""Fixed inputs for benchmarking the core's CPU paths (asv `benchmarks/` and pytest-benchmark
`microbench/` share them): a busy user's raw events, their grouped activity, similarity lists and
ranked picks, all taken from the seeded default-size dataset."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from servers.core.recommender import Pick, merge_scores, seeds_of
from servers.core.rules import load_rules
from servers.core.store import Activity, group_events
from workloads.dataset import DatasetParams, generate

BUSY_USER_EVENTS = 2000  # events of one synthetic heavy user (many users' events relabelled)


@dataclass
class CorePathInputs:
    events: list[dict[str, Any]]
    activity: Activity
    seeds: dict[int, float]
    similar: dict[int, tuple[tuple[int, float], ...]]  # as the store gives them: (item, score) pairs
    scores: dict[int, float]
    picks: list[Pick]


def build_inputs(params: DatasetParams | None = None) -> CorePathInputs:
    dataset = generate(params or DatasetParams(items=5000, users=400))
    events = [{"item": e["item"], "kind": e["kind"], "ts": e["ts"]} for e in dataset.collections["events"][:BUSY_USER_EVENTS]]
    activity = group_events(events)
    rule = load_rules().rules["home/for-you"]
    seeds = seeds_of(activity, rule.seeds * 4)
    similar_by_id = {d["_id"]: tuple((s["item"], s["score"]) for s in d["similar"]) for d in dataset.collections["item_similar"]}
    similar = {seed: similar_by_id[seed] for seed in seeds}
    scores = merge_scores(seeds, similar)
    items = {d["_id"]: d for d in dataset.collections["items"]}
    ranked = Counter(scores).most_common(100)
    picks = [Pick(items[i], s, "similar") for i, s in ranked]
    return CorePathInputs(events, activity, seeds, similar, scores, picks)
