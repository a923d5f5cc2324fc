"""A user's activity: their events grouped by (item, kind), in the three forms the `grouping` switch reads.

- `group_events`: the app groups raw event documents (`grouping=app`).
- `Activity.add`: rows of MongoDB's `$group` (`grouping=db`).
- `activity_document` / `from_document`: one document per user, kept up to date as events are written
  (`grouping=write`). It holds what the rules read and nothing more: per kind and item, how many
  events and the latest time, plus the number of events (the history's size). Its size grows with the
  items a user touched, not with the events: `{"_id": user, "n": events, "k": {kind: {"item": {"c":
  count, "t": latest}}}}` (item ids as strings: MongoDB field names).

`activity_update` is the one atomic update that adds events to that document (`$inc` the counts, `$max`
the times), so concurrent writers of one user never lose each other's events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACTIVITY = "activity"  # the collection of per-user activity documents
KINDS = ("like", "dislike", "view", "purchase")

Document = dict[str, Any]


@dataclass
class Activity:
    """One user's events, grouped by (item, kind): how many, and the latest timestamp."""

    counts: dict[tuple[int, str], int] = field(default_factory=dict)
    latest: dict[str, dict[int, int]] = field(default_factory=dict)  # kind -> item -> latest timestamp
    events: int = 0  # how many events were grouped: the size of the history

    def add(self, item: int, kind: str, n: int, last: int) -> None:
        self.events += n
        self.counts[(item, kind)] = self.counts.get((item, kind), 0) + n
        of_kind = self.latest.setdefault(kind, {})
        of_kind[item] = max(of_kind.get(item, last), last)

    def items_of(self, kind: str) -> dict[int, int]:
        """item -> latest timestamp, for one kind (read-only view)."""
        return self.latest.get(kind, {})

    def count(self, item: int, kind: str) -> int:
        return self.counts.get((item, kind), 0)

    def is_empty(self) -> bool:
        return not self.counts


def group_events(events: list[Document]) -> Activity:
    """App-side grouping of raw event documents (the Python twin of the `$group` stage); one pass,
    no call per event (a user's events are read on every request)."""
    counts: dict[tuple[int, str], int] = {}
    latest: dict[str, dict[int, int]] = {}
    for event in events:
        item, kind, ts = event["item"], event["kind"], event["ts"]
        counts[item, kind] = counts.get((item, kind), 0) + 1
        of_kind = latest.get(kind)
        if of_kind is None:
            latest[kind] = {item: ts}
        elif ts > of_kind.get(item, ts - 1):
            of_kind[item] = ts
    return Activity(counts, latest, len(events))


def from_document(doc: Mapping[str, Any] | None) -> Activity:
    """The activity a user's document holds (none: no events yet)."""
    if doc is None:
        return Activity()
    counts: dict[tuple[int, str], int] = {}
    latest: dict[str, dict[int, int]] = {}
    for kind, entries in doc.get("k", {}).items():
        of_kind = latest[kind] = {}
        for key, entry in entries.items():
            item = int(key)
            counts[item, kind] = entry["c"]
            of_kind[item] = entry["t"]
    return Activity(counts, latest, doc.get("n", 0))


def activity_documents(events: Iterable[Mapping[str, Any]]) -> list[Document]:
    """One document per user of `events`, as `activity_update` would have built them event by event
    (the embedded loader's, and the lab's when it puts a user's activity back as it was)."""
    users: dict[int, Document] = {}
    for event in events:
        doc = users.get(event["user"])
        if doc is None:
            doc = users[event["user"]] = {"_id": event["user"], "n": 0, "k": {}}
        doc["n"] += 1
        entry = doc["k"].setdefault(event["kind"], {}).setdefault(str(event["item"]), {"c": 0, "t": event["ts"]})
        entry["c"] += 1
        entry["t"] = max(entry["t"], event["ts"])
    return list(users.values())


def activity_update(events: Iterable[Mapping[str, Any]]) -> Document:
    """The atomic update (an upsert) that adds one user's `events` to their activity document."""
    increments: dict[str, int] = {"n": 0}
    latest: dict[str, int] = {}
    for event in events:
        path = f"k.{event['kind']}.{event['item']}"
        increments["n"] += 1
        increments[f"{path}.c"] = increments.get(f"{path}.c", 0) + 1
        latest[f"{path}.t"] = max(latest.get(f"{path}.t", event["ts"]), event["ts"])
    return {"$inc": increments, "$max": latest}


def with_activity(collections: Mapping[str, list[Document]]) -> dict[str, list[Document]]:
    """A dataset's collections as a database is loaded with them: its events' activity documents added
    (before `meta`, which a loader writes last)."""
    loaded = {name: docs for name, docs in collections.items() if name != "meta"}
    loaded[ACTIVITY] = activity_documents(collections.get("events", []))
    if "meta" in collections:
        loaded["meta"] = collections["meta"]
    return loaded
