"""`POST /events`: what a client may send, checked before anything is written.

A body is one event, `{"user": id, "item": id, "kind": "like"|"dislike"|"view"|"purchase", "ts": unix
seconds}` (`ts` optional: the server's clock), or an array of 1 to `MAX_EVENTS` of them. Anything else
is refused whole, with the same 4xx JSON on every framework, and nothing is written: a batch with one
bad event is not partly stored. Whether the user and the item exist is asked of the store afterwards
(`Store.unknown_ids`): 422 names the first ones that do not.
"""

from __future__ import annotations

import time
from typing import Any, TypeGuard

import orjson

from servers.core.activity import KINDS
from servers.core.failures import BadRequest

MAX_EVENTS = 100
MAX_ID = 2**53  # ids as JSON numbers every client reads exactly
EARLIEST_TS = 631_152_000  # 1990-01-01: older timestamps are a client's mistake (a 0, milliseconds / 1000 ...)
FUTURE_SLACK_S = 86_400  # a clock a day ahead is accepted
FIELDS = {"user", "item", "kind", "ts"}

Event = dict[str, Any]


def parse_events(body: bytes, now: float | None = None) -> list[Event]:
    """The events of a request body, each `{"user", "item", "kind", "ts"}`; BadRequest if any is wrong."""
    try:
        sent = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("invalid_json", "the body is not JSON (send an event object or an array of them)") from None
    batch = sent if isinstance(sent, list) else [sent]
    if not batch:
        raise BadRequest("invalid_event", "the array holds no events")
    if len(batch) > MAX_EVENTS:
        raise BadRequest("too_many_events", f"at most {MAX_EVENTS} events per request, got {len(batch)}", 413)
    stamp = int(time.time() if now is None else now)
    return [_event(n, sent, stamp, many=isinstance(sent, list)) for n, sent in enumerate(batch)]


def _event(number: int, sent: Any, now: int, many: bool) -> Event:
    where = f"event {number}" if many else "the event"
    if not isinstance(sent, dict):
        raise BadRequest("invalid_event", f"{where} must be a JSON object, got {type(sent).__name__}")
    if unknown := sorted(set(sent) - FIELDS):
        raise BadRequest("invalid_event", f"{where}: unknown field {unknown[0]!r} (allowed: user, item, kind, ts)")
    event = {"user": _id(sent, "user", where), "item": _id(sent, "item", where)}
    kind = sent.get("kind")
    if kind not in KINDS:
        raise BadRequest("invalid_event", f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    event["kind"] = kind
    ts = sent.get("ts", now)
    if not _is_int(ts) or not EARLIEST_TS <= ts <= now + FUTURE_SLACK_S:
        raise BadRequest("invalid_event", f"{where}: ts must be whole unix seconds from 1990 to a day from now, got {ts!r}")
    event["ts"] = ts
    return event


def _id(sent: dict[str, Any], name: str, where: str) -> int:
    value = sent.get(name)
    if not _is_int(value) or not 1 <= value < MAX_ID:
        raise BadRequest("invalid_event", f"{where}: {name} must be a positive integer id, got {value!r}")
    return int(value)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
