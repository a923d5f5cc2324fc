"""Per-service recommendation rules, read from a TOML file (the talk's rule schema).

    [services."groceries/fruit"]
    type = "similar"                      # similar (item route) | personal (user route)
    limit = 20
    where = { status = "ok" }             # equality on item fields
    filters = [ { kind = "disliked", n = 5 } ]
    fallback = "same-category"            # same-category | none

A new service needs a new table, no code. Errors name the file and the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.core.tomlcheck import SpecError, Table, read_toml

RULE_TYPES = ("similar", "personal")
ITEM_FIELDS = ("category", "seller", "status", "name")
MAX_LIMIT = 100
DEFAULT_RULES = Path(__file__).resolve().parents[1] / "rules" / "default.toml"


@dataclass(frozen=True)
class Rule:
    service: str
    type: str
    limit: int
    where: tuple[tuple[str, Any], ...]
    dislikes_n: int  # remove the user's n most recent dislikes (0: keep them)
    views_min: int  # remove items viewed at least this many times (0: keep them)
    roll_days: int  # push back items bought in the last days (0: no rolling)
    min_score: float  # drop similar items scoring below this
    seeds: int  # personal: how many recent positive items seed the candidates
    neighbours: int  # personal, cold users: how many similar users lend their activity
    max_candidates: int
    fallback: bool
    # Whether an item's metadata passes `where`: compiled once, when the rule is read.
    matches: Callable[[Mapping[str, Any]], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matches", compile_where(self.where))


def compile_where(where: tuple[tuple[str, Any], ...]) -> Callable[[Mapping[str, Any]], bool]:
    """`where` as one small function: no loop over the conditions per item."""
    if not where:
        return lambda item: True
    if len(where) == 1:
        ((name, value),) = where
        return lambda item: item.get(name) == value
    names, values = zip(*where, strict=True)
    return lambda item: tuple(map(item.get, names)) == values


@dataclass(frozen=True)
class RuleBook:
    default_service: str
    rules: dict[str, Rule]
    source: str
    version: str = ""  # a hash of the file's bytes: which rules a server runs


def load_rules(path: Path = DEFAULT_RULES) -> RuleBook:
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else ""
    top = Table(path, "", read_toml(path))
    services = top.table("services")
    if not services.data:
        raise services.fail("", "must define at least one service")
    rules = {name: _rule(path, name, services.table(name)) for name in services.data}
    default = top.string("default_service", next(iter(rules)))
    top.reject_unknown()
    if default not in rules:
        raise top.fail("default_service", f"names no service in this file: {default!r}")
    return RuleBook(default, rules, str(path), version)


def _rule(path: Path, name: str, table: Table) -> Rule:
    kind = table.string("type", choices=RULE_TYPES)
    limit = table.integer("limit", 20, low=1, high=MAX_LIMIT)
    where_table = table.table("where", {})
    where = []
    for field_name in where_table.data:
        if field_name not in ITEM_FIELDS:
            raise where_table.fail(field_name, f"is not an item field ({', '.join(ITEM_FIELDS)})")
        where.append((field_name, where_table.string(field_name)))
    dislikes_n = views_min = roll_days = 0
    for index, entry in enumerate(table.array("filters", [])):
        f = Table(path, f"{table.key('filters')}[{index}]", entry)
        filter_kind = f.string("kind", choices=("disliked", "viewed", "purchased"))
        if filter_kind == "disliked":
            dislikes_n = f.integer("n", low=1, high=10_000)
        elif filter_kind == "viewed":
            views_min = f.integer("min_count", low=1, high=10_000)
        else:
            f.string("action", "roll", choices=("roll",))
            roll_days = f.integer("days", low=1, high=3650)
        f.reject_unknown()
    rule = Rule(
        service=name,
        type=kind,
        limit=limit,
        where=tuple(where),
        dislikes_n=dislikes_n,
        views_min=views_min,
        roll_days=roll_days,
        min_score=table.number("min_score", 0.0, low=0.0, high=1.0),
        seeds=table.integer("seeds", 5, low=1, high=100),
        neighbours=table.integer("neighbours", 5, low=1, high=100),
        max_candidates=table.integer("max_candidates", 60, low=1, high=1000),
        fallback=table.string("fallback", "same-category", choices=("same-category", "none")) == "same-category",
    )
    table.reject_unknown()
    return rule


__all__ = ["DEFAULT_RULES", "MAX_LIMIT", "Rule", "RuleBook", "SpecError", "load_rules"]
