"""A fixed set of requests over the tiny dataset: both routes, hot and cold users, services, limits,
unknown ids, bad input and encoding edge cases (used by the parity tests)."""

from __future__ import annotations

import random
from collections import Counter

from servers.core.runtime import Runtime
from workloads.dataset import generate
from workloads.spec import load_spec

BAD_REQUESTS = [
    ("items", "abc", ""),
    ("items", "-3", ""),
    ("items", "1.5", ""),
    ("items", "99999", ""),
    ("items", "1", "limit=0"),
    ("items", "1", "limit=500"),
    ("items", "1", "service=nope"),
    ("items", "1", "service=home/for-you"),
    ("items", "1", "user=abc"),
    ("items", "1", "user=99999"),
    ("users", "abc", ""),
    ("users", "99999", "service=home/for-you"),
    ("users", "1", "limit=x"),
    ("users", "1", "service=groceries/fruit"),
    ("users", "1", "foo=bar"),
    ("items", "%37", "limit=3"),  # percent-encoded id: decoded by the core on every framework
    ("items", "%FF", ""),  # not UTF-8 once decoded
    ("users", "1", "limit=%FF"),
    ("items", "7", "limit=3&"),
]


def sample_requests(spec_path: str, count: int = 60, seed: int = 5) -> list[tuple[str, str, str]]:
    """(route, raw id, query string) triples, deterministic for a spec and seed."""
    dataset = generate(load_spec(spec_path).dataset)
    rng = random.Random(seed)
    hot_items = [item for item, _ in Counter(e["item"] for e in dataset.collections["events"]).most_common(10)]
    items = [d["_id"] for d in dataset.collections["items"]]
    cold_users = [u["_id"] for u in dataset.collections["users"] if u["cold"]]
    warm_users = [u["_id"] for u in dataset.collections["users"] if not u["cold"]]
    requests: list[tuple[str, str, str]] = []
    while len(requests) < count - len(BAD_REQUESTS):
        roll = rng.random()
        if roll < 0.4:
            item = rng.choice(hot_items if rng.random() < 0.5 else items)
            query = rng.choice(["", f"user={rng.choice(warm_users)}", "service=groceries/strict", "limit=5"])
            requests.append(("items", str(item), query))
        else:
            user = rng.choice(cold_users if roll < 0.55 else warm_users)
            query = rng.choice(["service=home/for-you", "service=home/for-you&limit=7", ""])
            requests.append(("users", str(user), query))
    return requests + BAD_REQUESTS


async def answers(runtime: Runtime, requests: list[tuple[str, str, str]]) -> list[tuple[int, bytes]]:
    """Each request's status and body, as `runtime` answers them in turn."""
    out = []
    for route, raw_id, query in requests:
        handler = runtime.api.recommend_items if route == "items" else runtime.api.recommend_users
        reply = await handler(raw_id, query)
        out.append((reply.status, reply.body))
    return out
