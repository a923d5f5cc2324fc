"""The recommender: item and personalised recommendations under a service rule.

Item: similar items of an item, status filter, the caller's recent dislikes removed, limit N,
same-category fallback. Personal: candidates from recent positive activity via similarity (scores
merged), recent dislikes removed, items viewed >= k times removed, recently bought items pushed
to the end ("rolling"), same-category fallback; users with no history borrow the activity of
similar users. Ties are broken by item id so every variant ranks identically. Which candidates pass
and what they score is the rule's, through a `Judge` per request (`servers.core.judge`); a rule
that changes scores (a boost, @score code) ranks by the new ones (see `_rank`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from servers.core.judge import Count, Judge, no_count
from servers.core.rules import Rule
from servers.core.stats import current
from servers.core.store import Activity, Similar, Store

DAY = 86_400
# How much one interaction of a kind says about what the user wants next.
SEED_WEIGHTS = {"like": 1.0, "purchase": 0.8, "view": 0.3}
GLOBAL_TOP = "*"


class NotFound(Exception):
    """The item or user id does not exist."""


class Pick(NamedTuple):
    item: Mapping[str, Any]  # the item's metadata, as the cache keeps it (read-only)
    score: float
    reason: str  # similar | fallback | rolled

    def as_json(self) -> dict[str, Any]:
        item = self.item
        return {
            "id": item["_id"],
            "name": item["name"],
            "category": item["category"],
            "price": item["price"],
            "score": round(self.score, 6),
            "reason": self.reason,
        }


@dataclass
class Exclusions:
    """What a user's activity removes (dislikes, over-viewed) or pushes back (recent purchases)."""

    removed: set[int]
    rolled: set[int]

    @classmethod
    def of(cls, activity: Activity, rule: Rule, now: int) -> Exclusions:
        removed: set[int] = set()
        if rule.dislikes_n:
            dislikes = sorted(activity.items_of("dislike").items(), key=lambda kv: (-kv[1], kv[0]))
            removed.update(item for item, _ in dislikes[: rule.dislikes_n])
        if rule.views_min:
            removed.update(item for item in activity.items_of("view") if activity.count(item, "view") >= rule.views_min)
        rolled: set[int] = set()
        if rule.roll_days:
            since = now - rule.roll_days * DAY
            rolled = {item for item, ts in activity.items_of("purchase").items() if ts >= since}
        return cls(removed, rolled - removed)


class Recommender:
    def __init__(self, store: Store, now: int, count: Count | None = None) -> None:
        self.store = store
        self.now = now
        self.count = count or no_count  # rule code skipped or failed (servers.core.judge)

    async def for_item(self, rule: Rule, item_id: int, user_id: int | None, limit: int) -> list[dict[str, Any]]:
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: self.store.items([item_id]),
            lambda: self.store.similar_items([item_id], rule.min_score),
        ]
        if user_id is not None:
            calls += [lambda: self.store.users([user_id]), lambda: self.store.activities([user_id])]
        results = await self.store.run_all(calls)
        item = results[0][item_id]
        if item is None:
            raise NotFound(f"item {item_id} does not exist")
        if user_id is not None and results[2][user_id] is None:
            raise NotFound(f"user {user_id} does not exist")
        activity = results[3][0] if user_id is not None else Activity()
        if user_id is not None:
            current().history = activity.events
        exclusions = Exclusions.of(activity, rule, self.now)
        exclusions.removed.add(item_id)
        scores = dict(results[1][item_id])
        judge = Judge(rule, user_id, activity, self.now, self.count)
        picks = await self._rank(judge, scores, exclusions, item["category"], limit)
        return [p.as_json() for p in picks]

    async def for_user(self, rule: Rule, user_id: int, limit: int) -> list[dict[str, Any]]:
        users, activities = await self.store.run_all(
            [
                lambda: self.store.users([user_id]),
                lambda: self.store.activities([user_id]),
            ]
        )
        if users[user_id] is None:
            raise NotFound(f"user {user_id} does not exist")
        activity = activities[0]
        current().history = activity.events
        seeds = seeds_of(activity, rule.seeds)
        if not seeds:
            seeds = await self._seeds_from_similar_users(user_id, rule)
        similar = await self.store.similar_items(list(seeds), rule.min_score)
        scores = merge_scores(seeds, similar)
        exclusions = Exclusions.of(activity, rule, self.now)
        judge = Judge(rule, user_id, activity, self.now, self.count)
        picks = await self._rank(judge, scores, exclusions, next(iter(seeds), GLOBAL_TOP), limit)
        return [p.as_json() for p in picks]

    async def _seeds_from_similar_users(self, user_id: int, rule: Rule) -> dict[int, float]:
        """Cold path: the recent positive items of the most similar users, weighted by similarity."""
        neighbours = (await self.store.similar_users(user_id))[: rule.neighbours]
        activities = await self.store.activities([n["user"] for n in neighbours])
        merged: dict[int, float] = {}
        for neighbour, activity in zip(neighbours, activities, strict=True):
            for item, weight in seeds_of(activity, rule.seeds).items():
                merged[item] = merged.get(item, 0.0) + neighbour["score"] * weight
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
        return dict(ranked[: rule.seeds])

    async def _rank(
        self,
        judge: Judge,
        scores: dict[int, float],
        exclusions: Exclusions,
        category: str | int,
        limit: int,
    ) -> list[Pick]:
        """Order, filter and fill the candidates. `category` is a category name, or an item id
        whose category the fallback uses (its metadata is fetched with the first candidates').

        Candidates are looked up in chunks, best first, until the answer is full: most pass the
        rule, so one chunk usually does, and the rest are never fetched or checked. A rule that changes
        scores ranks by the new ones: the next chunk is needed unless no candidate left can rise above
        the answer's last (a boost raises a score by a known factor at most); with @score code, which
        has no such bound, every candidate is looked up at once."""
        rule = judge.rule
        candidates = top_candidates(scores, exclusions.removed, rule.max_candidates)
        matches, later = judge.keep, exclusions.rolled
        category_name = category if isinstance(category, str) else GLOBAL_TOP
        primary: list[Pick] = []
        rolled: list[Pick] = []
        raised = rule.most_raised
        chunk = max(len(candidates), 1) if raised is None else limit + limit // 2 + 1
        ceiling = math.inf if raised is None else raised  # how far a candidate's score can rise
        for start in range(0, max(len(candidates), 1), chunk):
            part = candidates[start : start + chunk]
            wanted = [item for item, _ in part]
            if start == 0 and isinstance(category, int):
                wanted.append(category)
            if not wanted:
                break
            metadata = await self.store.items(wanted)
            if start == 0 and isinstance(category, int) and (category_item := metadata[category]) is not None:
                category_name = category_item["category"]
            for item, score in part:
                doc = metadata[item]
                if doc is not None and matches(doc):
                    if rule.rescores:
                        score = judge.score(doc, score)
                    if item in later:
                        rolled.append(Pick(doc, score, "rolled"))
                    else:
                        primary.append(Pick(doc, score, "similar"))
            if not rule.rescores:
                if len(primary) >= limit:
                    break
                continue
            primary.sort(key=_rank_key)
            following = start + chunk
            full = len(primary) >= limit and following < len(candidates)
            if full and primary[limit - 1].score > candidates[following][1] * ceiling:
                break  # none of the candidates left can rise above the answer's last
        if rule.rescores:
            rolled.sort(key=_rank_key)
        primary = primary[:limit]
        rolled = rolled[: limit - len(primary)]
        room = limit - len(primary) - len(rolled)
        fallback: list[Pick] = []
        if room > 0 and rule.fallback:
            taken = {p.item["_id"] for p in primary + rolled} | exclusions.removed | exclusions.rolled
            fallback = await self._fallback(judge, category_name, taken, room)
        return primary + fallback + rolled

    async def _fallback(self, judge: Judge, category: str, taken: set[int], room: int) -> list[Pick]:
        """Popular items of the same category, in popularity order, that pass the rule."""
        pool = [item for item in await self.store.category_top(category) if item not in taken]
        picks: list[Pick] = []
        chunk = max(room * 2, 10)
        for start in range(0, len(pool), chunk):
            part = pool[start : start + chunk]
            passing = _passing(judge, await self.store.items(part), part)
            picks += [Pick(passing[i], 0.0, "fallback") for i in part if i in passing]
            if len(picks) >= room:
                break
        return picks[:room]


def merge_scores(seeds: dict[int, float], similar: Mapping[int, Similar]) -> dict[int, float]:
    """Candidate score: the sum over seeds of seed weight x similarity (seeds in their ranked order)."""
    scores: dict[int, float] = {}
    get = scores.get
    for seed, weight in seeds.items():
        for item, score in similar[seed]:
            scores[item] = get(item, 0.0) + weight * score
    return scores


def top_candidates(scores: dict[int, float], removed: set[int], count: int) -> list[tuple[int, float]]:
    """The best `count` candidates not removed, by score, ties by item id (tuples compare natively:
    no key function per element)."""
    best = sorted([(-s, i) for i, s in scores.items() if i not in removed])[:count]
    return [(i, -negated) for negated, i in best]


def _rank_key(pick: Pick) -> tuple[float, int]:
    return -pick.score, pick.item["_id"]


def _passing(judge: Judge, metadata: Mapping[int, Mapping[str, Any] | None], ids: list[int]) -> dict[int, Mapping[str, Any]]:
    """The items among `ids` that exist and pass the rule."""
    matches = judge.keep
    return {i: doc for i in ids if (doc := metadata[i]) is not None and matches(doc)}


def seeds_of(activity: Activity, count: int) -> dict[int, float]:
    """The user's strongest recent positive items: weight by kind, newest first on ties."""
    weight: dict[int, float] = {}
    latest: dict[int, int] = {}
    for kind in sorted(SEED_WEIGHTS):  # a fixed order, so weights sum to the same float in every variant
        for item, last in activity.items_of(kind).items():
            weight[item] = weight.get(item, 0.0) + SEED_WEIGHTS[kind]
            latest[item] = max(latest.get(item, 0), last)
    ranked = sorted(weight, key=lambda item: (-weight[item], -latest[item], item))
    return {item: weight[item] for item in ranked[:count]}
