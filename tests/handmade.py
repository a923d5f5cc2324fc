"""A small hand-made dataset whose right answers can be worked out by hand (used by test_core_rules)."""

from __future__ import annotations

from typing import Any

from workloads.dataset import DATASET_NOW, Dataset, DatasetParams

HANDMADE_DB = "reclab_handmade"
DAY = 86_400
NOW = DATASET_NOW


def _item(i: int, category: str, status: str = "ok") -> dict[str, Any]:
    return {
        "_id": i,
        "name": f"item-{i}",
        "category": category,
        "price": float(i),
        "stock": 0 if status != "ok" else 5,
        "seller": "s",
        "status": status,
    }


def handmade_dataset() -> Dataset:
    """Items 1-9 in category A (4 sold out), 10-14 in category B.

    Similar to 1: 2 (.9), 3 (.8), 4 (.7, sold out), 5 (.6).   Similar to 10: 11 (.9), 13 (.7), 12 (.5).
    Similar to 13: 12 (.4), 1 (.3).   Similar to 14: 2 (.2).
    User 1: disliked 3 (recent) and 5 (older).   User 2: liked 10; viewed 11 three times and 12 twice;
    bought 13 two days ago and 14 sixty days ago.   User 3: no events; similar to user 2.
    Category A popularity: 6, 7, 4, 8, 9, 2 ...   Category B: 14, 13, 12, 11, 10.
    """
    items = [_item(i, "A", "sold-out" if i == 4 else "ok") for i in range(1, 10)] + [_item(i, "B") for i in range(10, 15)]
    item_similar = [
        {
            "_id": 1,
            "similar": [
                {"item": 2, "score": 0.9},
                {"item": 3, "score": 0.8},
                {"item": 4, "score": 0.7},
                {"item": 5, "score": 0.6},
            ],
        },
        {"_id": 10, "similar": [{"item": 11, "score": 0.9}, {"item": 13, "score": 0.7}, {"item": 12, "score": 0.5}]},
        {"_id": 13, "similar": [{"item": 12, "score": 0.4}, {"item": 1, "score": 0.3}]},
        {"_id": 14, "similar": [{"item": 2, "score": 0.2}]},
    ]
    events: list[dict[str, Any]] = []

    def event(user: int, item: int, kind: str, days_ago: float) -> None:
        events.append({"_id": len(events) + 1, "user": user, "item": item, "kind": kind, "ts": int(NOW - days_ago * DAY)})

    event(1, 3, "dislike", 1)
    event(1, 5, "dislike", 10)
    event(2, 10, "like", 1)
    for days in (1, 2, 3):
        event(2, 11, "view", days)
    for days in (1, 2):
        event(2, 12, "view", days)
    event(2, 13, "purchase", 2)
    event(2, 14, "purchase", 60)
    users = [{"_id": u, "name": f"user-{u}", "segment": "A", "cold": u == 3} for u in (1, 2, 3)]
    user_similar = [{"_id": 3, "similar": [{"user": 2, "score": 0.5}]}]
    category_top = [
        {"_id": "A", "items": [6, 7, 4, 8, 9, 2, 3, 5, 1]},
        {"_id": "B", "items": [14, 13, 12, 11, 10]},
        {"_id": "*", "items": [6, 14, 7]},
    ]
    dataset = Dataset(
        DatasetParams(items=14, categories=2, users=3),
        {
            "items": items,
            "item_similar": item_similar,
            "user_similar": user_similar,
            "users": users,
            "events": events,
            "category_top": category_top,
            "meta": [],
        },
    )
    dataset.collections["meta"] = [{"_id": "dataset", "now": NOW, "hash": dataset.content_hash()}]
    return dataset
