"""Reading a log of interactions (user, item, an optional rating or event kind, a timestamp) into
dense arrays: ids of any form remapped to integers from 1 (the mapping kept, in order of first
appearance), ratings kept and mapped to the lab's kinds (or event names mapped to them), timestamps
as unix seconds.

    user,item,rating,timestamp           delimiter given or sniffed; a header given, refused or sniffed
    u17,movie-3,4.5,2024-05-01T10:00:00Z  timestamps in unix s, ms, µs or ns, or ISO 8601 (no zone: UTC)

Columns are named with `columns` (user, item, rating or kind, timestamp; `-` skips one); without it
a header's names are recognised (userId, item_id, movieId, event, time, ...), else the order is
user,item,rating,timestamp (user,item,timestamp for three columns). Kinds (`kinds`): `KIND=MATCH`
pairs, MATCH one of `LO..HI` (ratings, either end optional), `a|b` (event names) or `*` (the rest);
the default maps ratings >= 4 to like, <= 2 to dislike, the rest to view, and event names to the
kind of the same name (click: view, buy/transaction: purchase, ...). A numeric timestamp is seconds
below 1e11, milliseconds below 1e14, microseconds below 1e17, else nanoseconds.

The file is read in binary, one physical line at a time: each line is decoded on its own
(`encoding`, UTF-8 by default; a byte-order mark opening the file is ignored) and split at the
delimiter (a line holding a quote is parsed as CSV; a quoted field ends on its line). Every line is
read. Lines are numbered as in the file (1-based; the header, if any, is line 1 or the first
non-blank line). Blank lines are counted. A bad line is one that cannot be an interaction; its
reason is one of: not valid <encoding>, a NUL byte in the line, malformed quoting, wrong column
count, empty id, unparsable timestamp, zero timestamp, timestamp before 1990, timestamp in the
future (later than now + 1 day), unparsable rating, rating not a finite number, unknown event kind,
no kind for a value, and, from a second pass over the parsed arrays of the lines that passed the
first:

- rating out of scale: the scale is given (`rating_scale`, `LO..HI`) or inferred as the first of
  RATING_SCALES (narrowest first) that leaves out at most 0.1% of the ratings (or one, in a log of
  20 to 1,999 ratings; none in a log of fewer than 20). If none does, the scale cannot be told and
  is the ratings' own range: none is out of it (scores such as play counts keep their long tail).
- timestamp far outside the bulk of the log: with lo and hi the 1% and 99% quantiles of the
  timestamps (linear interpolation between order statistics) and span = max(hi - lo, 1 day), a
  timestamp outside [lo - span, hi + span] is bad. Strays of up to 1% of the lines, however many
  share one wrong date, are caught when they lie further than the bulk's own width from it; the
  rule leaves an evenly spread log whole (its extremes are within a span of the quantiles). In a
  log of fewer than about 100 lines the quantiles sit close to the extremes and the rule rarely
  applies (zero, pre-1990 and future timestamps are caught on their own).

A log with bad lines is an error naming how many and the first FIRST_BAD, with their numbers and
reasons (nothing is read), unless `skip_bad`: then they are left out, counted by reason and kept in
`Interactions.bad` with their raw bytes, in line order.
"""

from __future__ import annotations

import codecs
import csv
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

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
FIRST_BAD = 10  # bad lines named in a message
EARLIEST = 631_152_000  # 1990-01-01T00:00:00Z
FUTURE_MARGIN_S = 86_400  # a timestamp up to a day ahead of the clock is accepted (clock skew)
BULK_QUANTILE = 0.01  # the bulk of the log's timestamps lies between this quantile and 1 minus it
MIN_BULK_SPAN_S = 86_400
RATING_SCALES = ((0.0, 1.0), (1.0, 5.0), (0.5, 5.0), (0.0, 5.0), (1.0, 10.0), (0.0, 10.0), (1.0, 100.0), (0.0, 100.0))
SCALE_MISSES = 0.001  # the share of ratings an inferred scale may leave out
SCALE_ONE_MISS = 20  # from this many ratings, an inferred scale may leave out one even if that is more than the share
SHOWN_CHARS = 40  # of a value quoted in a reason
ESCAPES = {**{c: f"\\x{c:02x}" for c in [*range(32), 127]}, 9: "\\t", 10: "\\n", 13: "\\r", 92: "\\\\"}
ESCAPES.update({0xDC80 + b: f"\\x{0x80 + b:02x}" for b in range(128)})  # undecodable bytes, as surrogates


class TraceError(ValueError):
    """A log that cannot be read as asked: the file, the line (0: the file as a whole) and the reason."""

    def __init__(self, path: Path | str, line: int, reason: str) -> None:
        super().__init__(f"{path}: line {line}: {reason}" if line else f"{path}: {reason}")
        self.line = line


@dataclass(frozen=True)
class BadLine:
    """A line left out: its number in the file, why, and its bytes as read (without the line end)."""

    line: int
    reason: str
    raw: bytes = b""

    @property
    def key(self) -> str:
        """The reason without its details, as bad lines are counted."""
        return self.reason.split(":")[0]


@dataclass
class Interactions:
    """A log as arrays, one entry per interaction, in the log's order."""

    users: np.ndarray  # int64, dense ids from 1
    items: np.ndarray  # int64, dense ids from 1
    kinds: np.ndarray  # int8: index into workloads.dataset.KINDS
    times: np.ndarray  # int64 unix seconds
    ratings: np.ndarray  # float64, NaN where the log has no ratings
    user_ids: list[str]  # original id of dense user i+1
    item_ids: list[str]
    lines: int = 0  # lines read after the header (blank and bad ones included)
    blank: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> lines left out
    bad: list[BadLine] = field(default_factory=list)  # the lines left out, in line order
    rating_scale: tuple[float, float] | None = None  # None: the log has no ratings
    rating_scale_from: str = ""
    time_bulk: tuple[int, int] = (0, 0)  # the timestamps kept by the bulk rule (inclusive)

    @property
    def has_ratings(self) -> bool:
        return self.rating_scale is not None


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


@dataclass
class _Parsed:
    """The first pass: the good lines as lists, the bad ones counted (all of them kept if asked)."""

    keep_all: bool
    users: list[int] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    ratings: list[float] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)  # each good line's number
    user_of: dict[str, int] = field(default_factory=dict)
    item_of: dict[str, int] = field(default_factory=dict)
    lines: int = 0
    blank: int = 0
    bad: list[BadLine] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def reject(self, line: int, reason: str, raw: bytes) -> None:
        bad = BadLine(line, reason, raw.rstrip(b"\r\n") if self.keep_all else b"")
        self.counts[bad.key] += 1
        if self.keep_all or len(self.bad) < FIRST_BAD:
            self.bad.append(bad)


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


def parse_scale(text: str) -> tuple[float, float]:
    """`LO..HI`, two finite numbers with LO < HI (ValueError if not)."""
    low, dots, high = text.partition("..")
    try:
        scale = (float(low), float(high))
    except ValueError:
        scale = (math.nan, math.nan)
    if not dots or not all(math.isfinite(x) for x in scale) or scale[0] >= scale[1]:
        raise ValueError("give LO..HI, two numbers with LO < HI (e.g. 1..5)")
    return scale


def text_codec(encoding: str) -> str:
    """The codec's name, for an encoding a log can be read in line by line (ValueError if none)."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    name = "utf-8" if name == "utf-8-sig" else name  # a byte-order mark opening the file is ignored anyway
    if "\n,;".encode(name, errors="replace") != b"\n,;":
        raise ValueError(f"{encoding!r} is not ASCII-compatible (a log is read line by line): convert the file to UTF-8")
    return name


def describe_bad(bad: list[BadLine], total: int) -> str:
    """The first bad lines, one `line N: reason` a line, and how many more there are."""
    shown = [f"  line {b.line}: {b.reason}" for b in bad[:FIRST_BAD]]
    if total > len(shown):
        shown.append(f"  ... and {total - len(shown)} more")
    return "\n".join(shown)


def lines_count(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def escape_raw(raw: bytes, encoding: str) -> str:
    """A line's bytes as one line of text: backslash, tab, line ends and other control characters
    escaped (`\\\\`, `\\t`, `\\n`, `\\r`, `\\xNN`), bytes that are not valid in `encoding` as `\\xNN`."""
    return raw.decode(encoding, errors="surrogateescape").translate(ESCAPES)


def escape_text(text: str) -> str:
    """`text` as one line with no tab: escaped as `escape_raw` does."""
    return text.translate(ESCAPES)


def read_log(
    path: Path,
    *,
    delimiter: str | None = None,
    columns: list[str] | None = None,
    header: bool | None = None,
    kinds: str | None = None,
    skip_bad: bool = False,
    encoding: str = "utf-8",
    rating_scale: tuple[float, float] | None = None,
) -> Interactions:
    codec = text_codec(encoding)
    try:
        opening = _opening(path, codec)
        separator = delimiter or _sniff_delimiter(path, opening[0])
        header_line, names = _header(path, opening, separator, header)
        first_data = next((text for number, text in opening if number != header_line), None)
        width = len(names) if names else len(_cells(first_data or "", separator, lenient=True))
        layout = _layout(path, columns, names, width)
        if rating_scale is not None and "rating" not in layout:
            raise TraceError(path, 0, "--rating-scale: the log has no rating column")
        parse = _row_parser(path, layout, kinds)
        with open(path, "rb") as handle:
            parsed = _first_pass(handle, header_line, codec, encoding, separator, parse, skip_bad)
        return _whole_log(path, parsed, "rating" in layout, rating_scale, skip_bad, header_line)
    except OSError as error:
        raise TraceError(path, 0, f"cannot be read ({error.strerror or error})") from None


def _opening(path: Path, codec: str) -> list[tuple[int, str]]:
    """The file's first two non-blank lines with their numbers, decoded leniently (for sniffing)."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
        if b"\x00" in head:
            raise TraceError(path, 0, "is not a text file (it holds NUL bytes): binary, or UTF-16/32 text to convert to UTF-8")
        handle.seek(0)
        found = []
        for number, raw in _numbered(handle):
            text = raw.decode(codec, errors="replace")
            if text.strip():
                found.append((number, text.rstrip("\r\n")))
                if len(found) == 2:
                    break
    if not found:
        raise TraceError(path, 0, "is empty" if not head else "is empty (only blank lines)")
    return found


def _numbered(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, bytes) for each line, a UTF-8 byte-order mark opening the file removed."""
    first = handle.readline()
    if not first:
        return
    yield 1, first.removeprefix(codecs.BOM_UTF8)
    yield from enumerate(handle, start=2)


def _sniff_delimiter(path: Path, first: tuple[int, str]) -> str:
    """The candidate that splits the first line most (a bad line further on is then an error of its own)."""
    number, text = first
    counts = {candidate: text.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    if not counts[best]:
        raise TraceError(path, number, f"cannot tell the delimiter (none of {DELIMITERS!r}): give --delimiter")
    return best


def _header(path: Path, opening: list[tuple[int, str]], separator: str, header: bool | None) -> tuple[int, list[str] | None]:
    """The header's line number (0: none) and its names."""
    number, text = opening[0]
    cells = _cells(text, separator, lenient=True)
    if header is None:
        header = any(cell.strip().lower() in names for cell in cells for names in HEADER_NAMES.values())
    return (number, cells) if header else (0, None)


def _cells(text: str, separator: str, lenient: bool = False) -> list[str]:
    """A line split at the separator; as CSV if it holds a quote (ValueError if the quoting is
    malformed or the line holds a NUL byte, unless `lenient`: then split as it comes)."""
    if "\x00" in text and not lenient:
        raise ValueError("a NUL byte in the line")
    if '"' not in text:
        return text.split(separator)
    try:
        return next(csv.reader((text,), delimiter=separator, strict=not lenient), [])
    except csv.Error as error:
        if lenient:
            return text.split(separator)
        raise ValueError(f"malformed quoting: {error}") from None


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


Row = tuple[str, str, int, int, float]  # user, item, kind index, unix seconds, rating (NaN: none)
RowParser = Callable[[list[str]], Row]


def _row_parser(path: Path, layout: dict[str, int], kinds_text: str | None) -> RowParser:
    """The function making a line's cells an interaction (ValueError with the reason if they are not one)."""
    width = max(layout.values()) + 1
    user_at, item_at, time_at = layout["user"], layout["item"], layout["timestamp"]
    value_at = layout.get("rating", layout.get("kind"))
    numeric = "rating" in layout
    try:
        rules = parse_kinds(kinds_text or RATING_KINDS) if (kinds_text or numeric) else None
    except ValueError as error:
        raise TraceError(path, 0, f"--kinds: {error}") from None
    kind_index = {k: i for i, k in enumerate(KINDS)}
    view, latest = kind_index["view"], int(time.time()) + FUTURE_MARGIN_S

    def parse(row: list[str]) -> Row:
        if len(row) < width:
            raise ValueError(f"wrong column count: {len(row)}, expected at least {width}")
        user, item = row[user_at].strip(), row[item_at].strip()
        if not user or not item:
            raise ValueError("empty id: the user or the item is blank")
        ts = _timestamp(row[time_at], latest)
        if value_at is None:
            return user, item, view, ts, math.nan
        value = row[value_at].strip()
        rating = _rating(value) if numeric else math.nan
        return user, item, kind_index[_kind(value, rating if numeric else None, rules)], ts, rating

    return parse


def _first_pass(
    handle: BinaryIO, header_line: int, codec: str, encoding: str, separator: str, parse: RowParser, keep_all: bool
) -> _Parsed:
    """Every line decoded, split and parsed on its own: the good ones as lists, the bad ones counted."""
    out = _Parsed(keep_all)
    users, items, kinds, times, ratings, numbers = out.users, out.items, out.kinds, out.times, out.ratings, out.numbers
    user_of, item_of = out.user_of, out.item_of
    for number, raw in _numbered(handle):
        if number == header_line:
            continue
        out.lines += 1
        try:
            text = raw.decode(codec)
        except UnicodeDecodeError as error:
            out.reject(number, f"not valid {encoding}: byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the line", raw)
            continue
        if not text.strip():
            out.blank += 1
            continue
        try:
            user, item, kind, ts, rating = parse(_cells(text.rstrip("\r\n"), separator))
        except ValueError as error:
            out.reject(number, str(error), raw)
            continue
        users.append(user_of.setdefault(user, len(user_of) + 1))
        items.append(item_of.setdefault(item, len(item_of) + 1))
        kinds.append(kind)
        times.append(ts)
        ratings.append(rating)
        numbers.append(number)
    return out


def _whole_log(
    path: Path, parsed: _Parsed, numeric: bool, given_scale: tuple[float, float] | None, skip_bad: bool, header_line: int
) -> Interactions:
    """The second pass (rating scale, bulk of the timestamps), then the bad lines: an error, or left out."""
    times = np.array(parsed.times, dtype=np.int64)
    ratings = np.array(parsed.ratings, dtype=np.float64)
    scale: tuple[float, float] | None = None
    scale_from, off_scale = "", None
    if numeric and len(ratings):
        scale, scale_from, off_scale = _scale_check(ratings, given_scale)
    time_bulk, off_bulk = _bulk_check(times)
    late = _late_bad_lines(path, parsed.numbers, ratings, times, scale, off_scale, time_bulk, off_bulk, skip_bad)
    for line in late:
        parsed.counts[line.key] += 1
    bad = sorted(parsed.bad + late, key=lambda b: b.line)
    total = sum(parsed.counts.values())
    if total and not skip_bad:
        raise TraceError(path, 0, f"{lines_count(total, 'bad line')} of {parsed.lines} (nothing imported; --skip-bad "
                         f"leaves them out):\n{describe_bad(bad, total)}")  # fmt: skip
    keep = ~(off_bulk | off_scale) if off_scale is not None else ~off_bulk
    if not keep.any():
        raise TraceError(path, 0, _nothing_read(parsed, total, header_line, bad))
    users, user_ids = _dense(np.array(parsed.users, dtype=np.int64)[keep], list(parsed.user_of))
    items, item_ids = _dense(np.array(parsed.items, dtype=np.int64)[keep], list(parsed.item_of))
    return Interactions(
        users, items, np.array(parsed.kinds, dtype=np.int8)[keep], times[keep], ratings[keep], user_ids, item_ids,
        parsed.lines, parsed.blank, parsed.counts, bad, scale, scale_from, time_bulk,
    )  # fmt: skip


def _nothing_read(parsed: _Parsed, total: int, header_line: int, bad: list[BadLine]) -> str:
    if total:
        return f"holds no interactions: all {total} lines after the header are bad\n{describe_bad(bad, total)}"
    if parsed.blank:
        return f"holds no interactions (only {'a header and ' if header_line else ''}{lines_count(parsed.blank, 'blank line')})"
    return "holds no interactions (only a header)"


def _scale_check(ratings: np.ndarray, given: tuple[float, float] | None) -> tuple[tuple[float, float], str, np.ndarray]:
    """The rating scale, how it was chosen, and which ratings fall outside it."""
    if given is not None:
        scale, how = given, "given"
    else:
        scale, how = infer_scale(ratings)
    return scale, how, (ratings < scale[0]) | (ratings > scale[1])


def infer_scale(ratings: np.ndarray) -> tuple[tuple[float, float], str]:
    """The narrowest common scale leaving out at most 0.1% of the ratings (or one, of 20 to 1,999),
    else the ratings' own range."""
    allowed = max(int(len(ratings) * SCALE_MISSES), int(len(ratings) >= SCALE_ONE_MISS))
    for low, high in RATING_SCALES:
        misses = int(np.count_nonzero((ratings < low) | (ratings > high)))
        if misses <= allowed:
            return (low, high), f"inferred: the narrowest common scale, holding all but {misses} of {len(ratings)} ratings"
    low, high = float(ratings.min()), float(ratings.max())
    return (low, high), "inferred: no common scale fits, so the ratings' own range (none is out of it)"


def bulk_range(times: np.ndarray) -> tuple[int, int]:
    """[lo - span, hi + span] (whole seconds within): lo and hi the 1% and 99% quantiles, span =
    max(hi - lo, 1 day)."""
    low, high = (float(q) for q in np.quantile(times, [BULK_QUANTILE, 1 - BULK_QUANTILE]))
    span = max(high - low, MIN_BULK_SPAN_S)
    return math.ceil(low - span), math.floor(high + span)


def _bulk_check(times: np.ndarray) -> tuple[tuple[int, int], np.ndarray]:
    """The timestamps the bulk rule keeps (inclusive), and which fall outside them."""
    if not len(times):
        return (0, 0), np.zeros(0, dtype=bool)
    first, last = bulk_range(times)
    return (first, last), (times < first) | (times > last)


def _late_bad_lines(
    path: Path, numbers: list[int], ratings: np.ndarray, times: np.ndarray, scale: tuple[float, float] | None,
    off_scale: np.ndarray | None, time_bulk: tuple[int, int], off_bulk: np.ndarray, with_raw: bool,
) -> list[BadLine]:  # fmt: skip
    """The lines the second pass finds bad (a rating out of scale first), with their bytes if asked."""
    found = []
    if off_scale is not None and scale is not None:
        scale_text = f"{scale[0]:g}..{scale[1]:g}"
        for index in np.flatnonzero(off_scale).tolist():
            found.append((numbers[index], f"rating out of scale: {ratings[index]:g} (scale {scale_text})"))
        off_bulk = off_bulk & ~off_scale
    kept = f"kept: {iso_time(time_bulk[0])} .. {iso_time(time_bulk[1])}"
    for index in np.flatnonzero(off_bulk).tolist():
        found.append((numbers[index], f"timestamp far outside the bulk of the log: {iso_time(int(times[index]))} ({kept})"))
    raws = _raw_lines(path, {number for number, _ in found}) if with_raw and found else {}
    return [BadLine(number, reason, raws.get(number, b"")) for number, reason in found]


def _raw_lines(path: Path, wanted: set[int]) -> dict[int, bytes]:
    """The bytes of the lines numbered in `wanted` (without their line ends)."""
    found = {}
    with open(path, "rb") as handle:
        for number, raw in _numbered(handle):
            if number in wanted:
                found[number] = raw.rstrip(b"\r\n")
                if len(found) == len(wanted):
                    break
    return found


def _dense(ids: np.ndarray, originals: list[str]) -> tuple[np.ndarray, list[str]]:
    """Ids 1..n renumbered, if some no longer occur, in order of first appearance among those left."""
    if not len(ids) or np.count_nonzero(np.bincount(ids)) == len(originals):
        return ids, originals
    present, first = np.unique(ids, return_index=True)
    order = present[np.argsort(first, kind="stable")]
    new_of = np.zeros(len(originals) + 1, dtype=np.int64)
    new_of[order] = np.arange(1, len(order) + 1)
    return new_of[ids], [originals[old - 1] for old in order.tolist()]


def iso_time(ts: int) -> str:
    """Unix seconds as ISO 8601 in UTC."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…")


def _timestamp(text: str, latest: int) -> int:
    """Unix seconds from seconds, ms, µs, ns or ISO 8601 (ValueError: unparsable, zero, before 1990, in the future)."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"unparsable timestamp: {_shown(text)} (unix seconds or ISO 8601)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ts = int(moment.timestamp())
    else:
        if not math.isfinite(value):
            raise ValueError(f"unparsable timestamp: {_shown(text)} (unix seconds or ISO 8601)")
        ts = int(value / _unit(value))
    if ts == 0:
        raise ValueError(f"zero timestamp: {_shown(text)}")
    if ts < EARLIEST:
        raise ValueError(f"timestamp before 1990: {_shown(text)}")
    if ts > latest:
        raise ValueError(f"timestamp in the future: {_shown(text)}")
    return ts


def _unit(value: float) -> float:
    """Units per second of a numeric timestamp, told from its size (as many logs have ms or finer)."""
    size = abs(value)
    return 1.0 if size < 1e11 else 1e3 if size < 1e14 else 1e6 if size < 1e17 else 1e9


def _rating(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"unparsable rating: {_shown(text)}") from None
    if not math.isfinite(number):
        raise ValueError(f"rating not a finite number: {_shown(text)}")
    return number


def _kind(value: str, number: float | None, rules: list[KindRule] | None) -> str:
    if rules is None:
        kind = EVENT_SYNONYMS.get(value.lower())
        if kind is None:
            raise ValueError(f"unknown event kind: {_shown(value)} (map it with --kinds)")
        return kind
    for rule in rules:
        if rule.matches(value, number):
            return rule.kind
    raise ValueError(f"no kind for the value: {_shown(value)} (add a KIND=* to --kinds)")
