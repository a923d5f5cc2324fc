"""Write entries of a request stream: the one place their text form is made and read.

A stream entry is either a read, a plain path (`/recommend/users/12?service=home/for-you`), or a
write: exactly `POST /events ` followed by one event as compact JSON, its keys in the order user,
item, kind, ts (`POST /events {"user":12,"item":5,"kind":"view","ts":1700000123}`). The JSON holds
no tab and no line break, so a write fits a stream file's line (`workloads.loadplan.parse_stream`).
The lab reads the users of a stream's writes from here (to put the database back after a run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

WRITE_ROUTE = "/events"
WRITE_PREFIX = f"POST {WRITE_ROUTE} "
EVENT_KEYS = ("user", "item", "kind", "ts")  # in this order; ts may be left out
CONTENT_TYPE = "application/json"


def write_entry(event: Mapping[str, Any]) -> str:
    """The stream entry that writes `event` (its user, item, kind and, if it has one, ts)."""
    body = {key: event[key] for key in EVENT_KEYS if key in event}
    return WRITE_PREFIX + msgspec.json.encode(body).decode()


def is_write(entry: str) -> bool:
    return entry.startswith(WRITE_PREFIX)


def write_body(entry: str) -> str:
    """The request body of a write entry (its JSON, as sent)."""
    return entry[len(WRITE_PREFIX) :]


def parse_write(entry: str) -> dict[str, Any] | None:
    """The event a write entry sends; None for a read entry."""
    if not is_write(entry):
        return None
    event: dict[str, Any] = msgspec.json.decode(entry[len(WRITE_PREFIX) :])
    return event


def written_users(entries: Iterable[str]) -> set[int]:
    """Every user that the stream's writes write for."""
    return {event["user"] for entry in entries if (event := parse_write(entry)) is not None}
