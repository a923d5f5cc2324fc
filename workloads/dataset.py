"""Seeded dataset generator: items, item/user similarity, users and activity events.

The same parameters and seed always give the same documents; `content_hash` fingerprints them.
Item popularity is Zipf-skewed, so a few items appear in many similarity lists and events
(the talk's "supernode").

How long a warm user's history is (`history_shape`):
    "exponential"  an exponential count with mean `events_per_user` (at least 1): light, few long ones
    "heavy"        `history_min` plus a gamma draw of shape `history_gamma` (below 1: a heavier tail),
                   mean `events_per_user`: shaped like public rating logs (MovieLens: min 20, mean 106,
                   median 65, max 737), where a few users have many times the typical history
When the events happen (`session_events`):
    0              each at a moment drawn uniformly over the last `history_days`
    N              in sessions of N events on average (geometric lengths), each placed uniformly in the
                   window; within a session the next event comes in the same second with probability
                   `same_second_share`, else 1 s to 10 min later (log-uniform): bursts, as people rate
Without these settings the documents are those of the exponential, session-less generator, draw for
draw; the new draws come from generators of their own (seeded from `seed`).
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any

import msgspec

from servers.core.tomlcheck import Table, limits, read_dataclass

DATASET_NOW = 1_767_225_600  # 2026-01-01T00:00:00Z: the dataset's "now"; recency is measured from it.
DAY = 86_400
KINDS = ("view", "like", "dislike", "purchase")
KIND_WEIGHTS = (0.70, 0.12, 0.08, 0.10)
COLLECTIONS = ("items", "item_similar", "user_similar", "users", "events", "category_top", "meta")
HISTORY_SHAPES = ("exponential", "heavy")
SESSION_GAP_S = (1, 600)  # a gap within a session that is not 0 s: log-uniform over this range


@dataclass(frozen=True)
class DatasetParams:
    """Sizes and skew of a generated dataset (the `[dataset]` table of a workload spec)."""

    seed: int = field(default=42, metadata=limits(low=0))
    items: int = field(default=5000, metadata=limits(10, 2_000_000))
    categories: int = field(default=40, metadata=limits(1, 10_000))
    users: int = field(default=2000, metadata=limits(2, 2_000_000))
    cold_user_share: float = field(default=0.1, metadata=limits(0.0, 1.0))
    events_per_user: int = field(default=25, metadata=limits(0, 10_000))
    similar_items: int = field(default=20, metadata=limits(1, 1000))
    similar_users: int = field(default=10, metadata=limits(1, 1000))
    popularity_zipf: float = field(default=1.1, metadata=limits(0.0, 5.0))
    sold_out_share: float = field(default=0.1, metadata=limits(0.0, 1.0))
    history_days: int = field(default=60, metadata=limits(1, 3650))
    # The shape of histories (module docstring): how many events a warm user has, and when.
    history_shape: str = field(default="exponential", metadata=limits(choices=HISTORY_SHAPES))
    history_min: int = field(default=20, metadata=limits(0, 10_000))  # heavy: the fewest events of a warm user
    history_gamma: float = field(default=0.6, metadata=limits(0.05, 100.0))  # heavy: gamma shape; smaller, heavier tail
    session_events: int = field(default=0, metadata=limits(0, 100_000))  # mean events per session; 0: no sessions
    same_second_share: float = field(default=0.5, metadata=limits(0.0, 1.0))  # sessions: next event in the same second
    category_top: int = field(default=100, metadata=limits(1, 100_000))
    # The supernode shape (all off by default): a few extremely hot items that many similarity lists
    # point to, and sparse users whose similar users are the same few neighbours.
    supernode_items: int = field(default=0, metadata=limits(0, 1000))  # the most popular items made hot
    supernode_share: float = field(default=0.0, metadata=limits(0.0, 1.0))  # chance a similarity list points to each
    neighbour_pool: int = field(default=0, metadata=limits(0, 1_000_000))  # cold users' similar users come from these
    # A dataset built beforehand (`reclab import-trace`): the folder of its collections, one JSON-lines
    # file each, relative to the spec; the generator's other settings do not apply to it.
    source: str = field(default="", metadata=limits())

    @classmethod
    def from_table(cls, table: Table) -> DatasetParams:
        params = read_dataclass(table, cls)
        if params.source:
            folder = (Path(table.path).parent / params.source).resolve()
            if not (folder / "meta.jsonl").is_file():
                raise table.fail("source", f"{folder} holds no dataset (no meta.jsonl): run `reclab import-trace` again")
            others = [name for name in table.data if name != "source"]
            if others:
                raise table.fail(others[0], "does not apply to a dataset read from `source`")
            return cls(source=str(folder))
        if params.categories > params.items:
            raise table.fail("categories", f"must not exceed items ({params.items})")
        _check_history(table, params)
        return params


@dataclass
class Dataset:
    """All documents of one dataset, by collection name, plus the parameters that made them."""

    params: DatasetParams
    collections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _hash: str | None = field(default=None, init=False, repr=False)

    def content_hash(self) -> str:
        """Fingerprint of every collection but `meta`; computed once (a dataset is not changed after it is built)."""
        if self._hash is None:
            self._hash = self._digest()
        return self._hash

    def _digest(self) -> str:
        digest = hashlib.sha256()
        for name in COLLECTIONS:
            if name == "meta":
                continue
            digest.update(name.encode())
            for doc in self.collections[name]:
                digest.update(msgspec.json.encode(doc, order="sorted"))
        return digest.hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        return {name: len(docs) for name, docs in self.collections.items()}


def _check_history(table: Table, params: DatasetParams) -> None:
    """Reject history settings that do not apply, and a heavy shape whose mean is not above its minimum."""
    if params.history_shape != "heavy":
        for name in ("history_min", "history_gamma"):
            if name in table.data:
                raise table.fail(name, 'applies to history_shape = "heavy"')
    elif params.events_per_user <= params.history_min:
        raise table.fail("history_min", f"must be below events_per_user ({params.events_per_user}), the mean")
    if not params.session_events and "same_second_share" in table.data:
        raise table.fail("same_second_share", "applies to sessions (session_events > 0)")


# Indexes the recommender's queries need, beyond `_id` (events are looked up by user).
INDEXES: dict[str, list[str]] = {"events": ["user"], "items": ["category"]}


def generate(params: DatasetParams) -> Dataset:
    """Build every collection from `params`; deterministic for a given seed. A dataset with a
    `source` is read from its folder instead."""
    if params.source:
        return read_jsonl(params)
    rng = random.Random(params.seed)
    item_ids = list(range(1, params.items + 1))
    categories = [f"cat-{c:03d}" for c in range(1, params.categories + 1)]
    category_of = {i: categories[(i - 1) % params.categories] for i in item_ids}

    ranked = item_ids[:]
    rng.shuffle(ranked)
    popularity = {item: 1.0 / (rank + 1) ** params.popularity_zipf for rank, item in enumerate(ranked)}
    by_category: dict[str, list[int]] = {c: [] for c in categories}
    for item in item_ids:
        by_category[category_of[item]].append(item)

    items = [_item(rng, i, category_of[i], params) for i in item_ids]
    item_similar = [_similar_items(rng, i, by_category[category_of[i]], ranked, popularity, params) for i in item_ids]
    users, favourites = _users(rng, categories, params)
    events = _events(rng, favourites, by_category, popularity, params)
    user_similar = _similar_users(rng, favourites, params)
    category_top = _category_top(by_category, ranked, params)
    meta = [{"_id": "dataset", "now": DATASET_NOW, "params": params.__dict__}]
    if params.supernode_items:  # a generator of its own: the rest of the dataset is the same as without
        supernodes = ranked[: params.supernode_items]
        _point_at_supernodes(random.Random(f"{params.seed}-supernodes"), item_similar, supernodes, params.supernode_share)
        meta[0]["supernodes"] = supernodes
    if params.neighbour_pool:
        _few_neighbours(random.Random(f"{params.seed}-neighbours"), user_similar, favourites, params)
    dataset = Dataset(
        params,
        {
            "items": items,
            "item_similar": item_similar,
            "user_similar": user_similar,
            "users": users,
            "events": events,
            "category_top": category_top,
            "meta": meta,
        },
    )
    meta[0]["hash"] = dataset.content_hash()
    return dataset


def _item(rng: random.Random, item_id: int, category: str, params: DatasetParams) -> dict[str, Any]:
    sold_out = rng.random() < params.sold_out_share
    return {
        "_id": item_id,
        "name": f"item-{item_id}",
        "category": category,
        "price": round(rng.uniform(0.5, 200.0), 2),
        "stock": 0 if sold_out else rng.randint(1, 500),
        "seller": f"seller-{rng.randint(1, max(1, params.items // 50))}",
        "status": "sold-out" if sold_out else "ok",
    }


def _weighted_sample(rng: random.Random, pool: list[int], weights: list[float], k: int) -> list[int]:
    """k distinct elements of pool, drawn with the given weights (Efraimidis-Spirakis keys)."""
    keyed = sorted(((rng.random() ** (1.0 / w), x) for x, w in zip(pool, weights, strict=True)), reverse=True)
    return [x for _, x in keyed[:k]]


def _similar_items(
    rng: random.Random,
    item: int,
    same_category: list[int],
    ranked: list[int],
    popularity: dict[int, float],
    params: DatasetParams,
) -> dict[str, Any]:
    k = min(params.similar_items, params.items - 1)
    pool = [x for x in same_category if x != item]
    n_same = min(len(pool), (k * 3) // 4)
    chosen = _weighted_sample(rng, pool, [popularity[x] for x in pool], n_same) if n_same else []
    popular_pool = [x for x in ranked[: max(4 * k, 50)] if x != item and x not in chosen]
    chosen += _weighted_sample(rng, popular_pool, [popularity[x] for x in popular_pool], k - len(chosen))
    scores = sorted((round(rng.uniform(0.3, 0.99), 4) for _ in chosen), reverse=True)
    return {"_id": item, "similar": [{"item": x, "score": s} for x, s in zip(chosen, scores, strict=True)]}


def _users(
    rng: random.Random, categories: list[str], params: DatasetParams
) -> tuple[list[dict[str, Any]], dict[int, tuple[list[str], bool]]]:
    users, favourites = [], {}
    for user in range(1, params.users + 1):
        fav = rng.sample(categories, min(2, len(categories)))
        cold = rng.random() < params.cold_user_share
        favourites[user] = (fav, cold)
        users.append({"_id": user, "name": f"user-{user}", "segment": fav[0], "cold": cold})
    return users, favourites


class _Weighted:
    """Draws an element of `pool` as `rng.choices(pool, weights)[0]` does, draw for draw, without
    summing the weights again on every draw."""

    __slots__ = ("cum", "hi", "pool", "total")

    def __init__(self, pool: list[Any], weights: list[float]) -> None:
        self.pool = pool
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1] + 0.0
        self.hi = len(pool) - 1

    def draw(self, rng: random.Random) -> Any:
        return self.pool[bisect(self.cum, rng.random() * self.total, 0, self.hi)]


def _events(
    rng: random.Random,
    favourites: dict[int, tuple[list[str], bool]],
    by_category: dict[str, list[int]],
    popularity: dict[int, float],
    params: DatasetParams,
) -> list[dict[str, Any]]:
    """Each warm user's events; the history shape's draws (count, moments) come from a generator of
    their own, so without them `rng` is used exactly as by the exponential, session-less generator."""
    events: list[dict[str, Any]] = []
    weighted = {c: _Weighted(pool, [popularity[x] for x in pool]) for c, pool in by_category.items()}
    kinds = _Weighted(list(KINDS), list(KIND_WEIGHTS))
    span = params.history_days * DAY
    lengths_rng, sessions_rng = random.Random(f"{params.seed}-history"), random.Random(f"{params.seed}-sessions")
    for user, (fav, cold) in favourites.items():
        if cold:
            continue
        if params.history_shape == "heavy":
            n = _heavy_length(lengths_rng, params)
        else:
            n = max(1, int(rng.expovariate(1.0 / params.events_per_user))) if params.events_per_user else 0
        # A small browsing set per user makes repeated views (the 3-views rule) common.
        browsing = [weighted[c].draw(rng) for c in fav for _ in range(3)]
        moments = _moments(sessions_rng, n, span, params) if params.session_events else None
        for number in range(n):
            kind = kinds.draw(rng)
            item = rng.choice(browsing) if kind == "view" and rng.random() < 0.5 else weighted[rng.choice(fav)].draw(rng)
            ts = moments[number] if moments is not None else DATASET_NOW - rng.randrange(span)
            events.append({"user": user, "item": item, "kind": kind, "ts": ts})
    events.sort(key=lambda e: (e["user"], e["ts"], e["item"], e["kind"]))
    for number, event in enumerate(events, start=1):
        event["_id"] = number
    return events


def _heavy_length(rng: random.Random, params: DatasetParams) -> int:
    """A heavy-tailed history length: `history_min` plus a gamma draw, mean `events_per_user`."""
    excess = params.events_per_user - params.history_min
    extra = int(rng.gammavariate(params.history_gamma, excess / params.history_gamma)) if excess > 0 else 0
    return max(1, params.history_min + extra)


def _moments(rng: random.Random, n: int, span: int, params: DatasetParams) -> list[int]:
    """Timestamps of a user's `n` events in sessions, ascending, within the last `span` seconds."""
    first = DATASET_NOW - span + 1
    offsets = session_offsets(rng, n, span, params.session_events, params.same_second_share)
    return [first + offset for offset in offsets]


def session_offsets(rng: random.Random, n: int, span: int, session_events: float, same_second_share: float) -> list[int]:
    """Moments of `n` events, in seconds from a window's start (each below `span`), ascending, in
    sessions of `session_events` events on average (geometric lengths), each placed uniformly in the
    window; within one the next event is in the same second with probability `same_second_share`,
    else `SESSION_GAP_S` seconds later (log-uniform)."""
    stay = 1.0 - 1.0 / max(1.0, session_events)  # the chance a session goes on for another event
    low, high = math.log(SESSION_GAP_S[0]), math.log(SESSION_GAP_S[1] + 1)
    moments: list[int] = []
    while len(moments) < n:
        gaps = [0]
        while len(moments) + len(gaps) < n and rng.random() < stay:
            gaps.append(0 if rng.random() < same_second_share else int(math.exp(rng.uniform(low, high))))
        moment = rng.randrange(max(1, span - sum(gaps)))
        for gap in gaps:
            moment += gap
            moments.append(min(moment, span - 1))
    moments.sort()
    return moments


def _similar_users(
    rng: random.Random, favourites: dict[int, tuple[list[str], bool]], params: DatasetParams
) -> list[dict[str, Any]]:
    by_segment: dict[str, list[int]] = {}
    for user, (fav, cold) in favourites.items():
        if not cold:
            by_segment.setdefault(fav[0], []).append(user)
    warm = [u for u, (_, cold) in favourites.items() if not cold]
    docs = []
    for user, (fav, _) in favourites.items():
        pool = [u for u in by_segment.get(fav[0], []) if u != user] or [u for u in warm if u != user]
        chosen = rng.sample(pool, min(params.similar_users, len(pool)))
        scores = sorted((round(rng.uniform(0.2, 0.95), 4) for _ in chosen), reverse=True)
        docs.append({"_id": user, "similar": [{"user": u, "score": s} for u, s in zip(chosen, scores, strict=True)]})
    return docs


def _point_at_supernodes(rng: random.Random, item_similar: list[dict[str, Any]], supernodes: list[int], share: float) -> None:
    """Make each similarity list point to each supernode with probability `share` (in place of its
    weakest entry, at a score of its own; the list stays best first and as long)."""
    for doc in item_similar:
        similar = doc["similar"]
        for node in supernodes:
            if node == doc["_id"] or any(s["item"] == node for s in similar) or not similar or rng.random() >= share:
                continue
            similar[-1] = {"item": node, "score": round(rng.uniform(0.6, 0.99), 4)}
            similar.sort(key=lambda s: -s["score"])


def _few_neighbours(
    rng: random.Random, user_similar: list[dict[str, Any]], favourites: dict[int, tuple[list[str], bool]], params: DatasetParams
) -> None:
    """Give every cold user similar users drawn from the same `neighbour_pool` warm users: their cold
    path (similar users, then those users' activity) always reads the same few users."""
    warm = sorted(u for u, (_, cold) in favourites.items() if not cold)
    neighbours = rng.sample(warm, min(params.neighbour_pool, len(warm)))
    for doc in user_similar:
        if favourites[doc["_id"]][1]:
            chosen = rng.sample([u for u in neighbours if u != doc["_id"]], min(params.similar_users, len(neighbours)))
            scores = sorted((round(rng.uniform(0.2, 0.95), 4) for _ in chosen), reverse=True)
            doc["similar"] = [{"user": u, "score": s} for u, s in zip(chosen, scores, strict=True)]


def _category_top(by_category: dict[str, list[int]], ranked: list[int], params: DatasetParams) -> list[dict[str, Any]]:
    rank = {item: r for r, item in enumerate(ranked)}
    docs = [{"_id": c, "items": sorted(pool, key=rank.__getitem__)[: params.category_top]} for c, pool in by_category.items()]
    docs.append({"_id": "*", "items": ranked[: params.category_top]})
    return docs


def read_jsonl(params: DatasetParams) -> Dataset:
    """The dataset whose collections `write_jsonl` wrote into `params.source`."""
    folder = Path(params.source)
    collections = {}
    for name in COLLECTIONS:
        with open(folder / f"{name}.jsonl", "rb") as handle:
            collections[name] = [msgspec.json.decode(line) for line in handle]
    dataset = Dataset(params, collections)
    collections["meta"][0]["hash"] = dataset.content_hash()
    return dataset


def write_jsonl(dataset: Dataset, folder: Path) -> None:
    """Write each collection as `folder/NAME.jsonl` (for inspection or external loading)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, docs in dataset.collections.items():
        with open(folder / f"{name}.jsonl", "wb") as handle:
            for doc in docs:
                handle.write(msgspec.json.encode(doc) + b"\n")
