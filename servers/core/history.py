"""Requests grouped by the size of their user's history (events), for the cost of a request as a
history grows: the activity read, its grouping and the rules all work through every event.

Buckets are about half a decade wide; `none` holds requests that name no user (an item's similar
items without a caller), `0` users without history (served through their similar users).
"""

from __future__ import annotations

BUCKETS = ("none", "0", "1-9", "10-29", "30-99", "100-299", "300-999", "1000+")
_UPPER = ((0, "0"), (9, "1-9"), (29, "10-29"), (99, "30-99"), (299, "100-299"), (999, "300-999"))
WHATS = ("requests", "docs", "db", "app", "total")  # counted per bucket (db, app, total: milliseconds)


def label_of(events: int) -> str:
    """The bucket of a history of `events` events (-1: no user)."""
    if events < 0:
        return "none"
    for upper, label in _UPPER:
        if events <= upper:
            return label
    return "1000+"


def field_of(label: str) -> str:
    """The tally's name prefix of a bucket."""
    return f"history_{label}"


def bucket_of(events: int) -> str:
    """The tally's name prefix of the bucket of a history of `events` events."""
    return field_of(label_of(events))


FIELDS = tuple(f"{field_of(label)}_{what}" for label in BUCKETS for what in WHATS)
