"""Reading a log of interactions (user, item, an optional rating or event kind, a timestamp) into
dense arrays: ids of any form remapped to integers from 1 (the mapping kept, in order of first
appearance), ratings or event names mapped to the lab's kinds, timestamps as unix seconds.

    user,item,rating,timestamp           delimiter given or sniffed; a header given, refused or sniffed
    u17,movie-3,4.5,2024-05-01T10:00:00Z  timestamps in unix seconds or ISO 8601 (no zone: UTC)

Columns are named with `columns` (user, item, rating or kind, timestamp; `-` skips one); without it
a header's names are recognised (userId, item_id, movieId, event, time, ...), else the order is
user,item,rating,timestamp (user,item,timestamp for three columns). Kinds (`kinds`): `KIND=MATCH`
pairs, MATCH one of `LO..HI` (ratings, either end optional), `a|b` (event names) or `*` (the rest);
the default maps ratings >= 4 to like, <= 2 to dislike, the rest to view, and event names to the
kind of the same name (click: view, buy/transaction: purchase, ...). A bad line is an error with
its number, unless `skip_bad`: then it is left out and counted by reason.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from _csv import Reader

from workloads.dataset import KINDS

FIELDS = ("user", "item", "rating", "kind", "timestamp")
HEADER_NAMES = {
    "user": ("user", "userid", "user_id", "visitorid", "visitor_id", "customer", "customer_id", "uid"),
    "item": ("item", "itemid", "item_id", "movieid", "movie_id", "product", "product_id", "productid", "iid"),
    "rating": ("rating", "score", "stars"),
    "kind": ("kind", "event", "event_type", "action", "type"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date", "created_at"),
}
RATING_KINDS = "like=4..,dislike=..2,view=*"
EVENT_SYNONYMS = {
    "view": "view", "click": "view", "pageview": "view", "impression": "view",
    "like": "like", "addtocart": "like", "favorite": "like", "favourite": "like", "rate": "like",
    "dislike": "dislike",
    "purchase": "purchase", "buy": "purchase", "transaction": "purchase", "order": "purchase",
}  # fmt: skip
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t| "


class TraceError(ValueError):
    """A log that cannot be read as asked: the file, the line (0: the file as a whole) and the reason."""

    def __init__(self, path: Path | str, line: int, reason: str) -> None:
        super().__init__(f"{path}: line {line}: {reason}" if line else f"{path}: {reason}")
        self.line = line


@dataclass
class Interactions:
    """A log as arrays, one entry per interaction, in the log's order."""

    users: np.ndarray  # int64, dense ids from 1
    items: np.ndarray  # int64, dense ids from 1
    kinds: np.ndarray  # int8: index into workloads.dataset.KINDS
    times: np.ndarray  # int64 unix seconds
    user_ids: list[str]  # original id of dense user i+1
    item_ids: list[str]
    lines: int = 0  # data lines read (the header not counted)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> lines left out


@dataclass(frozen=True)
class KindRule:
    kind: str
    low: float | None = None
    high: float | None = None
    names: frozenset[str] = frozenset()
    rest: bool = False

    def matches(self, value: str, number: float | None) -> bool:
        if self.rest:
            return True
        if self.names:
            return value.lower() in self.names
        if number is None:
            return False
        return (self.low is None or number >= self.low) and (self.high is None or number <= self.high)


def parse_kinds(text: str) -> list[KindRule]:
    """`like=4..,dislike=..2,view=*` or `purchase=buy|transaction,view=*` (ValueError if malformed)."""
    rules = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, match = part.partition("=")
        if kind not in KINDS or not match:
            raise ValueError(f"{part!r}: give KIND=MATCH with KIND one of {', '.join(KINDS)}")
        if match == "*":
            rules.append(KindRule(kind, rest=True))
        elif ".." in match:
            low, _, high = match.partition("..")
            try:
                rules.append(KindRule(kind, float(low) if low else None, float(high) if high else None))
            except ValueError:
                raise ValueError(f"{part!r}: a range is LO..HI with numbers") from None
        else:
            rules.append(KindRule(kind, names=frozenset(n.strip().lower() for n in match.split("|"))))
    if not rules:
        raise ValueError("no kinds given")
    return rules


def read_log(
    path: Path,
    *,
    delimiter: str | None = None,
    columns: list[str] | None = None,
    header: bool | None = None,
    kinds: str | None = None,
    skip_bad: bool = False,
) -> Interactions:
    try:
        handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as error:
        raise TraceError(path, 0, f"cannot be read ({error.strerror})") from None
    with handle:
        try:
            sample = handle.read(SNIFF_BYTES)
            if not sample.strip():
                raise TraceError(path, 0, "is empty")
            dialect_delimiter = delimiter or _sniff_delimiter(path, sample)
            if header is None:
                header = _sniff_header(sample, dialect_delimiter)
            handle.seek(0)
            reader = csv.reader(handle, delimiter=dialect_delimiter)
            names = next(reader) if header else None
            first = next(csv.reader([line for line in sample.splitlines() if line.strip()][:2], delimiter=dialect_delimiter))
            layout = _layout(path, columns, names, len(names) if names else len(first))
            return _read_rows(path, reader, layout, kinds, skip_bad)
        except UnicodeDecodeError as error:
            raise TraceError(path, 0, f"is not UTF-8 text ({error.reason} at byte {error.start} of a block)") from None
        except csv.Error as error:
            raise TraceError(path, 0, f"is not a delimited text file ({error})") from None


def _sniff_delimiter(path: Path, sample: str) -> str:
    """The candidate that splits the first line most (a bad line further on is then an error of its own)."""
    first = next(line for line in sample.splitlines() if line.strip())
    counts = {candidate: first.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    if not counts[best]:
        raise TraceError(path, 1, f"cannot tell the delimiter (none of {DELIMITERS!r}): give --delimiter")
    return best


def _sniff_header(sample: str, delimiter: str) -> bool:
    first = next(csv.reader([sample.splitlines()[0]], delimiter=delimiter), [])
    return any(cell.strip().lower() in names for cell in first for names in HEADER_NAMES.values())


def _layout(path: Path, columns: list[str] | None, header: list[str] | None, width: int) -> dict[str, int]:
    """Field name -> column index (`width`: the header's columns, or the first line's)."""
    if columns is None and header is not None:
        found = {}
        for index, cell in enumerate(header):
            for name, aliases in HEADER_NAMES.items():
                if cell.strip().lower() in aliases and name not in found:
                    found[name] = index
        if "user" in found and "item" in found and "timestamp" in found:
            return found
    if columns is None:
        columns = ["user", "item", "timestamp"] if width == 3 else ["user", "item", "rating", "timestamp"]
    layout = {}
    for index, name in enumerate(columns):
        if name == "-":
            continue
        if name not in FIELDS or name in layout:
            raise TraceError(path, 0, f"--columns: {name!r} is not one of {', '.join(FIELDS)}, - (or is given twice)")
        layout[name] = index
    missing = [n for n in ("user", "item", "timestamp") if n not in layout]
    if missing or ("rating" in layout and "kind" in layout):
        raise TraceError(path, 0, "--columns must name user, item and timestamp, and at most one of rating, kind")
    return layout


def _read_rows(path: Path, reader: Reader, layout: dict[str, int], kinds_text: str | None, skip_bad: bool) -> Interactions:
    width = max(layout.values()) + 1
    value_column = layout.get("rating", layout.get("kind"))
    numeric = "rating" in layout
    try:
        rules = parse_kinds(kinds_text or RATING_KINDS) if (kinds_text or numeric) else None
    except ValueError as error:
        raise TraceError(path, 0, f"--kinds: {error}") from None
    kind_index = {k: i for i, k in enumerate(KINDS)}
    user_of: dict[str, int] = {}
    item_of: dict[str, int] = {}
    users, items, kinds, times = [], [], [], []
    skipped: Counter[str] = Counter()
    lines = 0
    for row in reader:
        lines += 1
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        try:
            if len(row) < width:
                raise ValueError(f"wrong column count: {len(row)}, expected at least {width}")
            user, item = row[layout["user"]].strip(), row[layout["item"]].strip()
            if not user or not item:
                raise ValueError("empty id: the user or the item is blank")
            ts = _timestamp(row[layout["timestamp"]])
            kind = "view" if value_column is None else _kind(row[value_column], numeric, rules)
        except ValueError as error:
            if not skip_bad:
                raise TraceError(path, reader.line_num, str(error)) from None
            skipped[str(error).split(":")[0]] += 1
            continue
        users.append(user_of.setdefault(user, len(user_of) + 1))
        items.append(item_of.setdefault(item, len(item_of) + 1))
        kinds.append(kind_index[kind])
        times.append(ts)
    if not users:
        raise TraceError(path, 0, "holds no interactions" + (f" ({sum(skipped.values())} lines skipped)" if skipped else ""))
    return Interactions(
        np.array(users, dtype=np.int64),
        np.array(items, dtype=np.int64),
        np.array(kinds, dtype=np.int8),
        np.array(times, dtype=np.int64),
        list(user_of),
        list(item_of),
        lines,
        skipped,
    )


def _timestamp(text: str) -> int:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"unparsable timestamp: {text!r} (unix seconds or ISO 8601)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"unparsable timestamp: {text!r} (unix seconds or ISO 8601)")
    return int(value / 1000) if value > 1e11 else int(value)  # milliseconds, as many logs have them


def _kind(text: str, numeric: bool, rules: list[KindRule] | None) -> str:
    value = text.strip()
    number = None
    if numeric:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"unparsable rating: {value!r}") from None
    if rules is None:
        kind = EVENT_SYNONYMS.get(value.lower())
        if kind is None:
            raise ValueError(f"unknown event kind: {value!r} (map it with --kinds)")
        return kind
    for rule in rules:
        if rule.matches(value, number):
            return rule.kind
    raise ValueError(f"no kind for {value!r} (add a KIND=* to --kinds)")
