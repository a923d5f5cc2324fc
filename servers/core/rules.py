"""Per-service recommendation rules, read from a TOML file (the talk's rule schema).

    [services."groceries/fruit"]
    type = "similar"                      # similar (item route) | personal (user route)
    limit = 20
    where = { status = "ok" }             # equality on item fields
    filters = [ { kind = "disliked", n = 5 } ]
    fallback = "same-category"            # same-category | none
    max_price = 150.0                     # drop items above this price
    boost = { category = "cat-001", by = 1.5 }   # multiply the scores of one category's items
    code = '''
    @filter
    def cheap(item, ctx):
        return item["price"] < 50
    '''                                   # @filter / @score functions (servers/core/rule_code.py)
    code_budget_ms = 5.0                  # the time a request's rule code may take

A new service needs a new table, and its code, if any, runs in a sandbox. Errors name the file,
the field and, in code, the line. `load_rules(path, as_code=True)` turns each rule's `max_price`
and `boost` into the same effect written as code (the bench's `rules=code` level).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from servers.core.rule_code import CodeError, CodeFunction, compile_code
from servers.core.tomlcheck import SpecError, Table, read_toml

RULE_TYPES = ("similar", "personal")
RULE_FORMS = ("declarative", "code")  # max_price and boost as written, or as rule code (`as_code`)
ITEM_FIELDS = ("category", "seller", "status", "name")
MAX_LIMIT = 100
CODE_KEY = re.compile(r"\s*code\s*=\s*(\"\"\"|'''|\"|')")  # a rule's code = and its opening quotes
DEFAULT_RULES = Path(__file__).resolve().parents[1] / "rules" / "default.toml"
PRICED_RULES = DEFAULT_RULES.with_name("priced.toml")  # the default with a price cap and a boost: `--matrix rules`


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
    max_price: float | None = None  # drop items priced above
    boost: tuple[str, float] | None = None  # (category, factor): that category's scores multiplied
    code: tuple[CodeFunction, ...] = ()  # @filter and @score functions, compiled
    code_budget_ms: float = 5.0
    # Worked out once, when the rule is read: whether an item's metadata passes `where` and
    # `max_price`; the code's filters and scorers; whether scores change, and how far they can rise.
    matches: Callable[[Mapping[str, Any]], bool] = field(init=False, repr=False, compare=False)
    filters: tuple[CodeFunction, ...] = field(init=False, repr=False, compare=False)
    scorers: tuple[CodeFunction, ...] = field(init=False, repr=False, compare=False)
    rescores: bool = field(init=False, repr=False, compare=False)
    # A new score is at most this times the old one (None: no bound known, as with @score code).
    most_raised: float | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "matches", compile_where(self.where, self.max_price))
        put(self, "filters", tuple(f for f in self.code if f.kind == "filter"))
        put(self, "scorers", tuple(f for f in self.code if f.kind == "score"))
        put(self, "rescores", self.boost is not None or bool(self.scorers))
        put(self, "most_raised", None if self.scorers else max(1.0, self.boost[1]) if self.boost else 1.0)


def compile_where(where: tuple[tuple[str, Any], ...], max_price: float | None = None) -> Callable[[Mapping[str, Any]], bool]:
    """`where` (and the price cap) as one small function: no loop over the conditions per item."""
    if max_price is not None:
        equal = compile_where(where)
        return lambda item: item["price"] <= max_price and equal(item)
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
    as_code: bool = False  # max_price and boost were turned into rule code


def load_rules(path: Path = DEFAULT_RULES, as_code: bool = False) -> RuleBook:
    """The rule file at `path` (a SpecError naming the file, the field and the reason if it is bad);
    `as_code`: each rule's `max_price` and `boost` become rule code with the same effect."""
    version = hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else ""
    top = Table(path, "", read_toml(path))
    services = top.table("services")
    if not services.data:
        raise services.fail("", "must define at least one service")
    rules = {name: _rule(path, name, services.table(name)) for name in services.data}
    if as_code:
        rules = {name: _as_code(path, rule) for name, rule in rules.items()}
        version += "+code"
    default = top.string("default_service", next(iter(rules)))
    top.reject_unknown()
    if default not in rules:
        raise top.fail("default_service", f"names no service in this file: {default!r}")
    return RuleBook(default, rules, str(path), version, as_code)


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
        max_price=table.number("max_price", low=0.0) if "max_price" in table.data else None,
        boost=_boost(table),
        code_budget_ms=table.number("code_budget_ms", 5.0, low=0.01, high=1000.0),
    )
    if "code" in table.data:
        rule = _with_code(path, table, name, rule, table.string("code"))
    table.reject_unknown()
    return rule


def _boost(table: Table) -> tuple[str, float] | None:
    if "boost" not in table.data:
        return None
    boost = table.table("boost")
    category, factor = boost.string("category"), boost.number("by", low=0.0, high=1000.0)
    boost.reject_unknown()
    return category, factor


def _with_code(path: Path, table: Table, name: str, rule: Rule, code: str) -> Rule:
    """`rule` with the functions of `code`; a SpecError naming the service and the code's line if they
    may not run."""
    try:
        functions = compile_code(code, f"{path} [services.{name!r}] code")
    except CodeError as error:
        first = _code_start(path, name)
        in_file = f" (line {first + error.line - 1} of the file)" if first else ""
        raise table.fail("code", f"line {error.line} of the code{in_file}: {error.reason}") from None
    return replace(rule, code=rule.code + tuple(functions))


def _code_start(path: Path, service: str) -> int | None:
    """The line of `path` on which the code of `service` begins (the line after the opening quotes of
    a multi-line string, which TOML drops when nothing follows them), or None if it cannot be told."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    inside = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            inside = _names_table(stripped, service)
        elif inside and (value := CODE_KEY.match(line)):
            opened = value.group(1)
            return number + 1 if opened in ('"""', "'''") and not line[value.end() :].strip() else number
    return None


def _names_table(header: str, service: str) -> bool:
    """True if the TOML table header `header` (a line such as `[services."a/b"]`) is that of `service`."""
    try:
        parsed = tomllib.loads(header)
    except tomllib.TOMLDecodeError:
        return False
    return list(parsed.get("services", {})) == [service] and len(parsed) == 1


def _as_code(path: Path, rule: Rule) -> Rule:
    """`rule` with its price cap and category boost written as rule code instead (the same effect)."""
    parts = []
    if rule.max_price is not None:
        parts.append(f"@filter\ndef max_price(item, ctx):\n    return item['price'] <= {rule.max_price!r}\n")
    if rule.boost is not None:
        category, factor = rule.boost
        boosted = f"score * {factor!r} if item['category'] == {category!r} else score"
        parts.append(f"@score\ndef boost(item, score, ctx):\n    return {boosted}\n")
    if not parts:
        return rule
    functions = compile_code("\n".join(parts), f"{path} [services.{rule.service!r}] as code")
    return replace(rule, max_price=None, boost=None, code=tuple(functions) + rule.code)


__all__ = ["DEFAULT_RULES", "MAX_LIMIT", "Rule", "RuleBook", "SpecError", "load_rules"]
