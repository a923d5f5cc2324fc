"""A seeded log of interactions shaped like a shop's (for the tests, the README's example and the
import's benchmarks): users, some far busier than others (Pareto weights, alpha 2), with two
favourite categories rate mostly items of those, popular items more often (Zipf), over `days` days;
ids are strings (`u00042`, `sku-0017`) and timestamps ISO 8601 or unix seconds, so an import has
something to remap and parse. With `items_out`, an item file (item, category, name, price) for the
same catalogue.
"""

from __future__ import annotations

import csv
import itertools
import random
from datetime import UTC, datetime
from pathlib import Path

START = 1_735_689_600  # 2025-01-01T00:00:00Z


def write_sample(
    out: Path, lines: int, *, seed: int = 7, users: int = 0, items: int = 0, days: int = 30,
    iso: bool = True, items_out: Path | None = None,
) -> None:  # fmt: skip
    rng = random.Random(seed)
    users = users or max(20, lines // 20)
    items = items or max(40, lines // 50)
    categories = max(2, min(40, items // 25))
    category_of = [rng.randrange(categories) for _ in range(items)]
    by_category: list[list[int]] = [[] for _ in range(categories)]
    for item, category in enumerate(category_of):
        by_category[category].append(item)
    weights = [[1.0 / (rank + 1) ** 1.1 for rank in range(len(pool))] for pool in by_category]
    favourites = [rng.sample(range(categories), 2) for _ in range(users)]
    activity = list(itertools.accumulate(rng.paretovariate(2.0) for _ in range(users)))  # a few users far busier
    moments = sorted(rng.randrange(days * 86_400) for _ in range(lines))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "item", "rating", "timestamp"])
        for moment in moments:
            user = rng.choices(range(users), cum_weights=activity)[0]
            category = rng.choice(favourites[user]) if rng.random() < 0.85 else rng.randrange(categories)
            pool = by_category[category] or [rng.randrange(items)]
            item = rng.choices(pool, weights[category] or None)[0]
            liked = category in favourites[user]
            rating = max(1, min(5, round(rng.gauss(4.0 if liked else 2.5, 1.0))))
            ts = START + moment
            stamp = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if iso else str(ts)
            writer.writerow([f"u{user:05d}", f"sku-{item:04d}", rating, stamp])
    if items_out is not None:
        with open(items_out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["item", "category", "name", "price"])
            for item in range(items):
                name = f"product {item}"
                writer.writerow([f"sku-{item:04d}", f"cat-{category_of[item] + 1:03d}", name, round(rng.uniform(0.5, 200.0), 2)])
