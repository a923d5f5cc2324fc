"""One request's judge of candidates under its rule: which pass (`where`, `max_price`, @filter code)
and what they score (`boost`, then @score code, in the order written).

Rule code runs under the request's time budget (`code_budget_ms`: the time spent inside its calls,
summed over the request; waits for the database do not count): a function that goes over it, or
over a bound of `servers.core.rule_meter`, is skipped for the rest of the request and counted
(`rule_code_skipped`); one that fails on a candidate (a missing field, a wrong type, a result that
is not a finite number) is counted (`rule_code_errors`). Either way a filter that could not decide
drops the candidate (fails closed: a price cap that runs out of time lets nothing through, never
everything), and a score function that could not score leaves the score as it was. The answer
goes out either way. A rule without code costs nothing here: `keep` is its compiled `matches`.
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
        return all(self._run(f, (item, self.context), False) for f in self._filters)

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

    def _run(self, function: CodeFunction, args: tuple[Any, ...], undecided: Any) -> Any:
        """`function(*args)`, or `undecided` if it is skipped, goes over a bound, fails or answers
        with the wrong type."""
        if function.name in self._skipped:
            return undecided
        if self._left_s <= 0:  # the budget went to the functions before this one
            return self._skip(function, undecided)
        started = time.perf_counter()
        try:
            function.meter.begin(started + self._left_s)
            result = _checked(function.kind, function.call(*args))
        except OverBudget:
            return self._skip(function, undecided)
        except Exception:
            self._count("rule_code_errors")
            return undecided
        finally:
            self._left_s -= time.perf_counter() - started
        if self._left_s < 0:  # it answered, but the next calls would be over the budget
            self._skip(function, undecided)
        return result

    def _skip(self, function: CodeFunction, undecided: Any) -> Any:
        self._skipped.add(function.name)
        self._count("rule_code_skipped")
        return undecided


def _checked(kind: str, result: Any) -> bool | float:
    """A filter's answer as a bool, a score as a finite float; a TypeError or ValueError if it is not one."""
    if kind == "filter":
        if not isinstance(result, (bool, int)):
            raise TypeError(f"a filter answers True or False, not {type(result).__name__}")
        return bool(result)
    if isinstance(result, bool) or not isinstance(result, (int, float)):
        raise TypeError(f"a score is a number, not {type(result).__name__}")
    score = float(result)  # an OverflowError beyond a float's range
    if not math.isfinite(score):
        raise ValueError("a score must be finite")
    return score
