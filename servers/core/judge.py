"""One request's judge of candidates under its rule: which pass (`where`, `max_price`, @filter code)
and what they score (`boost`, then @score code, in the order written).

Rule code runs under the request's time budget (`code_budget_ms`: the time spent inside its calls,
summed over the request; waits for the database do not count): a function that goes over it, or
over a bound of `servers.core.rule_code`, is skipped for the rest of the request and counted
(`rule_code_skipped`); one that fails on a candidate (a missing field, a wrong type) leaves that
candidate as it was and is counted (`rule_code_errors`). The answer goes out either way. A rule
without code costs nothing here: `keep` is its compiled `matches`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from servers.core.rule_code import CodeFunction, Context, OverBudget
from servers.core.rules import Rule
from servers.core.store import Activity

Count = Callable[[str], None]


def no_count(name: str) -> None:
    """A `Count` that keeps nothing."""


class Judge:
    def __init__(self, rule: Rule, user: int | None, activity: Activity, now: int, count: Count = no_count) -> None:
        self.rule = rule
        self._filters = rule.filters
        self._scorers = rule.scorers
        self.keep: Callable[[Mapping[str, Any]], bool] = self._keep if self._filters else rule.matches
        self._count = count
        self._request = (user, activity, now)
        self._context: Context | None = None
        self._skipped: set[str] = set()
        self._left_s = rule.code_budget_ms / 1000  # of the request's time budget for rule code

    def _keep(self, item: Mapping[str, Any]) -> bool:
        if not self.rule.matches(item):
            return False
        return all(self._run(f, (item, self.context), True) for f in self._filters)

    def score(self, item: Mapping[str, Any], score: float) -> float:
        """The candidate's score after `boost` and the @score functions."""
        if (boost := self.rule.boost) is not None and item["category"] == boost[0]:
            score *= boost[1]
        for function in self._scorers:
            score = self._run(function, (item, score, self.context), score)
        return score

    @property
    def context(self) -> Context:
        if self._context is None:
            user, activity, now = self._request
            kinds = MappingProxyType({kind: frozenset(items) for kind, items in activity.latest.items()})
            self._context = Context(user, self.rule.service, now, kinds)
        return self._context

    def _run(self, function: CodeFunction, args: tuple[Any, ...], unchanged: Any) -> Any:
        """`function(*args)`, or `unchanged` if it is skipped, goes over a bound, fails or answers
        with the wrong type."""
        if function.name in self._skipped:
            return unchanged
        started = time.perf_counter()
        function.meter.begin(started + self._left_s)
        try:
            result = function.call(*args)
        except OverBudget:
            return self._skip(function, unchanged)
        except Exception:
            self._count("rule_code_errors")
            return unchanged
        finally:
            self._left_s -= time.perf_counter() - started
        if self._left_s < 0:
            self._skip(function, unchanged)
        if function.kind == "filter":
            return bool(result) if isinstance(result, (bool, int)) else self._wrong(unchanged)
        if isinstance(result, (int, float)) and not isinstance(result, bool) and math.isfinite(result):
            return float(result)
        return self._wrong(unchanged)

    def _skip(self, function: CodeFunction, unchanged: Any) -> Any:
        self._skipped.add(function.name)
        self._count("rule_code_skipped")
        return unchanged

    def _wrong(self, unchanged: Any) -> Any:
        self._count("rule_code_errors")
        return unchanged
