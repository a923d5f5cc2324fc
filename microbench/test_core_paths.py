"""pytest-benchmark microbenchmarks of the core's hot paths (`./noxw -s microbench`; not in the test run)."""

from __future__ import annotations

import orjson
import pytest

from servers.core.judge import Judge
from servers.core.recommender import Exclusions, merge_scores, top_candidates
from servers.core.rules import PRICED_RULES, Rule, load_rules
from servers.core.store import Activity, group_events
from workloads.corepaths import CorePathInputs, build_inputs
from workloads.dataset import DATASET_NOW


@pytest.fixture(scope="module")
def inputs() -> CorePathInputs:
    return build_inputs()


def test_group_2000_events_in_the_app(benchmark, inputs: CorePathInputs) -> None:
    activity = benchmark(group_events, inputs.events)
    assert activity.counts == inputs.activity.counts


def test_exclusions_dislikes_views_rolling(benchmark, inputs: CorePathInputs) -> None:
    rule = load_rules().rules["home/for-you"]
    exclusions = benchmark(Exclusions.of, inputs.activity, rule, DATASET_NOW)
    assert exclusions.removed or exclusions.rolled


def test_merge_scores_of_20_seeds(benchmark, inputs: CorePathInputs) -> None:
    assert benchmark(merge_scores, inputs.seeds, inputs.similar) == inputs.scores


def test_top_60_candidates(benchmark, inputs: CorePathInputs) -> None:
    assert len(benchmark(top_candidates, inputs.scores, set(), 60)) == min(60, len(inputs.scores))


def test_serialise_100_picks(benchmark, inputs: CorePathInputs) -> None:
    body = benchmark(lambda: orjson.dumps({"items": [p.as_json() for p in inputs.picks]}))
    assert body.count(b'"id"') == len(inputs.picks)


CANDIDATES = [{"_id": i, "price": float(i * 37 % 200), "category": f"cat-{i % 40 + 1:03d}", "status": "ok"} for i in range(60)]


def judged(rule: Rule) -> list[float]:
    """60 candidates kept or dropped and scored under `rule`, as one request's judge does it."""
    judge = Judge(rule, None, Activity(), DATASET_NOW)
    return [judge.score(item, 0.5) for item in CANDIDATES if judge.keep(item)]


@pytest.mark.parametrize("as_code", [False, True], ids=["declarative", "code"])
def test_judge_60_candidates_price_cap_and_boost(benchmark, as_code: bool) -> None:
    rule = load_rules(PRICED_RULES, as_code=as_code).rules["groceries/fruit"]
    assert benchmark(judged, rule) == judged(load_rules(PRICED_RULES).rules["groceries/fruit"])
