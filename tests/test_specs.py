"""Spec and rule files: good ones load, bad ones are rejected naming the file, the key and the reason;
the dataset is deterministic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from servers.core.rules import DEFAULT_RULES, load_rules
from servers.core.tomlcheck import SpecError
from workloads.dataset import DatasetParams, generate
from workloads.spec import SPECS_DIR, load_spec


def test_shipped_specs_and_rules_load() -> None:
    for path in SPECS_DIR.glob("*.toml"):
        assert load_spec(path).dataset.items > 0
    book = load_rules(DEFAULT_RULES)
    assert book.default_service in book.rules


def test_same_seed_same_hash_other_seed_other_hash() -> None:
    small = DatasetParams(items=200, categories=5, users=50)
    assert generate(small).content_hash() == generate(small).content_hash()
    assert generate(small).content_hash() != generate(DatasetParams(seed=43, items=200, categories=5, users=50)).content_hash()


def test_popularity_is_skewed() -> None:
    """Zipf popularity: the most frequent item in events is far above the median one."""
    from collections import Counter

    counts = Counter(e["item"] for e in generate(DatasetParams(items=500, categories=5, users=300)).collections["events"])
    ordered = sorted(counts.values(), reverse=True)
    assert ordered[0] > 5 * ordered[len(ordered) // 2]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[dataset]\nitems = 'many'\n", "dataset.items", "must be an integer"),
        ("[dataset]\nitems = 1\n", "dataset.items", "must be >= 10"),
        ("[dataset]\nitemz = 10\n", "dataset.itemz", "not a known key"),
        ("[dataset]\nitems = 10\ncategories = 20\n", "dataset.categories", "must not exceed"),
        ("[dataset\n", "", "not valid TOML"),
        ("dataset = 3\n", "dataset", "must be a table"),
        ("[load]\nmode = 'burst'\n", "load.mode", "must be one of"),
        ("[load]\nusers = 0\n", "load.users", "must be >= 1"),
        ("[load]\nusers = 2\nprocesses = 4\n", "load.users", "at least processes"),
        ("[requests]\npopularity = 'pareto'\n", "requests.popularity", "must be one of"),
        ("[requests]\nuser_share = 1.5\n", "requests.user_share", "must be <= 1.0"),
        ("[requests]\nitem_services = {}\n", "requests.item_services", "positive weight"),
        ("[requests]\nseeed = 3\n", "requests.seeed", "not a known key"),
    ],
)
def test_bad_spec_names_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    assert_rejected(load_spec, tmp_path / "spec.toml", text, key, reason)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_spec(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[services.a]\n", "services.a.type", "is required"),
        ("[services.a]\ntype = 'magic'\n", "services.a.type", "must be one of"),
        ("[services.a]\ntype = 'similar'\nlimit = 1000\n", "services.a.limit", "must be <= 100"),
        ("[services.a]\ntype = 'similar'\nwhere = { colour = 'red' }\n", "services.a.where.colour", "not an item field"),
        ("[services.a]\ntype = 'similar'\nfilters = [{ kind = 'liked' }]\n", "services.a.filters[0].kind", "must be one of"),
        ("[services.a]\ntype = 'similar'\nfilters = [{ kind = 'disliked' }]\n", "services.a.filters[0].n", "is required"),
        ("default_service = 'b'\n[services.a]\ntype = 'similar'\n", "default_service", "names no service"),
        ("[services]\n", "services", "at least one service"),
    ],
)
def test_bad_rule_file_names_file_and_field(tmp_path: Path, text: str, key: str, reason: str) -> None:
    assert_rejected(load_rules, tmp_path / "rules.toml", text, key, reason)


def assert_rejected(loader: Callable[[Path], object], path: Path, text: str, key: str, reason: str) -> None:
    """Loading `text` from `path` fails with a message naming the file, the key and the reason."""
    path.write_text(text)
    with pytest.raises(SpecError) as raised:
        loader(path)
    assert str(path) in str(raised.value)
    assert raised.value.key == key
    assert reason in raised.value.reason
