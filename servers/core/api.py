"""The HTTP contract without a framework: parse raw path and query strings, answer with status,
JSON body bytes and headers. Adapters pass strings in and copy the reply out, so every framework
returns byte-identical bodies and errors.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
import traceback
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote

import orjson

from servers.core import stats
from servers.core.admission import Overloaded, open_gate
from servers.core.events import parse_events
from servers.core.failures import BadRequest, Unavailable
from servers.core.limits import Limits
from servers.core.pace import Pace
from servers.core.readiness import Ping, down_dependencies
from servers.core.recommender import NotFound, Recommender
from servers.core.rules import MAX_LIMIT, Rule, RuleBook, SpecError, load_rules
from servers.core.tally import ADMISSION_COUNTS, ADMISSION_GAUGES, Tally, new_tally

JSON = "application/json"
ID_PATTERN = re.compile(r"[1-9][0-9]{0,15}")
ROUTE_PARAMS = {"similar": ("service", "limit", "user"), "personal": ("service", "limit")}
# What a framework's refusal of a request (before the core saw it) is called in the core's JSON errors.
REFUSALS = {
    400: ("bad_request", "the request could not be parsed"),
    408: ("request_timeout", "the request was not received in time"),
    413: ("payload_too_large", "the request body is too large"),
    414: ("uri_too_long", "the request target is too long"),
    431: ("header_fields_too_large", "the request head is too large"),
    503: ("unavailable", "the server is at its connection limit"),
}


class Reply(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


def error_body(error: str, detail: str) -> bytes:
    return orjson.dumps({"error": error, "detail": detail})


class RecommenderApi:
    """Answers the recommend routes, /health and /metrics; counts every request."""

    def __init__(
        self,
        recommender: Recommender,
        rules: RuleBook,
        describe: dict[str, Any],
        limits: Limits | None = None,
        pings: Mapping[str, Ping] | None = None,
        tally: Tally | None = None,
        shards: int = 1,
        admission: str = "none",
    ) -> None:
        self.recommender = recommender
        self.rules = rules
        self.describe = describe
        self.limits = limits or Limits()
        self.retry_after = {"Retry-After": str(self.limits.retry_after_s)}  # on every 503
        self.pings = dict(pings or {})  # dependency name -> ping, for /ready
        tally = tally or new_tally()  # shared by every worker of this server
        self.metrics = stats.ServerMetrics(tally, shards)
        self.pace = Pace(tally)
        self.draining = False  # set when the worker stops accepting: answers say Connection: close, /ready 503
        self.watch_rules = False  # reload the rules when their file changes (servers.core.rule_reload)
        self._tally = tally
        self.admission = admission
        self.gate = open_gate(admission, self.limits, tally)  # None: no admission control

    async def reload_rules(self) -> str:
        """Read the rule file again and swap the rules in (requests already running finish with the
        ones they started with); a bad file leaves the rules as they were. What happened, in a line."""
        current = self.rules
        try:
            rules = await asyncio.to_thread(load_rules, Path(current.source), current.as_code)
        except (SpecError, OSError) as error:
            self._tally.add("rules_reload_failures", 1)
            return f"rules not reloaded, still {current.version}: {error}"
        except Exception as error:  # whatever the file holds, the running rules stay and watching goes on
            self._tally.add("rules_reload_failures", 1)
            return f"rules not reloaded, still {current.version}: {current.source}: {error.__class__.__name__}: {error}"
        self.rules = rules
        self._tally.add("rules_reloads", 1)
        return f"rules reloaded: {current.version} -> {rules.version}"

    async def recommend_items(self, raw_id: str, query_string: str | None) -> Reply:
        """`raw_id`: the path segment as sent (still percent-encoded); `query_string`: None if the
        framework could not decode it."""
        return await self._serve("similar", raw_id, query_string)

    async def recommend_users(self, raw_id: str, query_string: str | None) -> Reply:
        return await self._serve("personal", raw_id, query_string)

    async def record_events(self, body: bytes) -> Reply:
        """`POST /events`: 200 `{"accepted": n}` once the database acknowledged them (servers.core.events)."""
        return await self._serve("events", "", None, body)

    def health(self) -> Reply:
        """Liveness: the process answers."""
        health = {"status": "ok", **self.describe, "rules": self.rules.version, "worker": os.getpid()}
        return self._plain(200, orjson.dumps(health))

    async def ready(self) -> Reply:
        """Readiness: every dependency answers a ping within `ready_timeout_ms`, or 503 naming those that
        do not; a draining worker is not ready either."""
        if self.draining:
            return self._plain(503, error_body("unavailable", "this worker is draining"), headers=self.retry_after)
        timeout_ms = self.limits.ready_timeout_ms
        down = await down_dependencies(self.pings, timeout_ms / 1000)
        if not down:
            return self._plain(200, orjson.dumps({"status": "ready", "dependencies": sorted(self.pings)}))
        detail = f"{', '.join(down)} did not answer within {timeout_ms} ms"
        return self._plain(503, orjson.dumps({"error": "unavailable", "detail": detail, "down": down}), headers=self.retry_after)

    def metrics_reply(self) -> Reply:
        snapshot = {**self.metrics.snapshot(), **self.pace.snapshot(), **self.describe, "admission": self._admission()}
        return self._plain(200, orjson.dumps({**snapshot, "rules": self.rules.version, "worker": os.getpid()}))

    def _admission(self) -> dict[str, Any]:
        """Admission control's totals over every worker: requests admitted and shed (`shed_late`: after
        waiting), milliseconds spent waiting, and now: the limits, requests in progress and waiting."""
        total = self._tally.total
        counts = {name: round(total(name), 3) if name == "queue_ms" else int(total(name)) for name in ADMISSION_COUNTS}
        gauges = {("limit" if name == "admission_limit" else name): int(total(name)) for name in ADMISSION_GAUGES}
        return {"mode": self.admission, **counts, **gauges}

    def unknown_route(self, method: str, path: str) -> Reply:
        return self._plain(404, error_body("not_found", f"no route for {method} {path}"), counted=True)

    def method_not_allowed(self, method: str, path: str) -> Reply:
        return self._plain(405, error_body("method_not_allowed", f"{method} is not allowed on {path}"), counted=True)

    def framework_error(self, status: int) -> Reply:
        """A request the framework itself refused or failed on, answered in the core's JSON."""
        if status in REFUSALS:
            error, detail = REFUSALS[status]
            return self._plain(
                status, error_body(error, detail), counted=True, headers=self.retry_after if status == 503 else None
            )
        if status >= 500:
            return self._plain(500, error_body("internal_error", "the server failed while answering"), counted=True)
        return self._plain(400, error_body(*REFUSALS[400]), counted=True)

    def _plain(self, status: int, body: bytes, counted: bool = False, headers: dict[str, str] | None = None) -> Reply:
        """A reply that needs no database; `counted` ones (errors) show in /metrics."""
        request = stats.begin_request()
        request.finish()
        if counted:
            self.metrics.record(request, status)
        return Reply(status, body, {"Content-Type": JSON, "Server-Timing": request.server_timing(), **(headers or {})})

    async def _serve(self, route: str, raw_id: str, query_string: str | None, sent: bytes = b"") -> Reply:
        request = stats.begin_request(self.limits.fanout)
        extra: dict[str, str] = {}
        try:
            async with asyncio.timeout(self.limits.deadline_ms / 1000):
                if route == "events":
                    body = await self._record(sent, request)
                else:
                    body = await self._answer(route, raw_id, query_string)
            status = 200
        except BadRequest as bad:
            status, body = bad.status, error_body(bad.error, bad.detail)
        except NotFound as missing:
            status, body = 404, error_body("not_found", str(missing))
        except Overloaded as refused:
            status, body, extra = 503, error_body("overloaded", refused.detail), self.retry_after
        except TimeoutError:
            status, body = 503, error_body("unavailable", f"no answer within the {self.limits.deadline_ms} ms deadline")
            extra = self.retry_after
        except Unavailable as down:
            status, body, extra = 503, error_body("unavailable", down.detail), self.retry_after
        except Exception:  # a bug: logged here, and no internals in the reply
            traceback.print_exc(file=sys.stderr)
            status, body = 500, error_body("internal_error", "the server failed while answering")
        request.finish()
        self.metrics.record(request, status)
        return Reply(status, body, {"Content-Type": JSON, "Server-Timing": request.server_timing(), **extra})

    async def _record(self, sent: bytes, request: stats.RequestStats) -> bytes:
        request.written = 0
        events = parse_events(sent)
        store = self.recommender.store
        async with self._admitted():
            users, items = await store.unknown_ids(sorted({e["user"] for e in events}), sorted({e["item"] for e in events}))
            if users or items:
                named = [f"user {u}" for u in users[:5]] + [f"item {i}" for i in items[:5]]
                raise BadRequest("unknown_id", f"no such {', '.join(named)}: nothing was written", 422)
            await store.record(events)
        request.written = len(events)
        return orjson.dumps({"accepted": len(events)})

    async def _answer(self, route: str, raw_id: str, query_string: str | None) -> bytes:
        what = "item" if route == "similar" else "user"
        target = parse_id(f"{what}_id", decode_segment(f"{what}_id", raw_id))
        query = parse_query(query_string, ROUTE_PARAMS[route])
        rule = self._rule(query.get("service"), route)
        limit = parse_limit(query.get("limit"), rule)
        user = parse_id("user", query["user"]) if "user" in query else None
        async with self._admitted():
            if route == "similar":
                items = await self.recommender.for_item(rule, target, user, limit)
            else:
                items = await self.recommender.for_user(rule, target, limit)
        return orjson.dumps({"service": rule.service, f"{what}_id": target, "count": len(items), "items": items})

    @asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        """A request's database work, once admission control lets it in (raises Overloaded if not)."""
        gate = self.gate
        if gate is None:
            yield
            return
        await gate.enter()
        began = time.perf_counter()
        try:
            yield
        finally:
            gate.leave(time.perf_counter() - began)

    def _rule(self, service: str | None, route: str) -> Rule:
        name = service if service is not None else self.rules.default_service
        rule = self.rules.rules.get(name)
        if rule is None:
            raise BadRequest("unknown_service", f"no service named {name!r} (known: {', '.join(sorted(self.rules.rules))})")
        if rule.type != route:
            other = "/recommend/items/{item_id}" if rule.type == "similar" else "/recommend/users/{user_id}"
            raise BadRequest("wrong_route", f"service {name!r} is a {rule.type!r} service; use {other}")
        return rule


def parse_id(name: str, raw: str) -> int:
    if not ID_PATTERN.fullmatch(raw):
        raise BadRequest("invalid_parameter", f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


def decode_segment(name: str, raw: str) -> str:
    """Percent-decode a path segment (strict UTF-8), the same way on every framework."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("invalid_parameter", f"{name} is not valid percent-encoded UTF-8: {raw!r}") from None


def parse_query(query_string: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    if query_string is None:
        raise BadRequest("invalid_parameter", "query string is not valid UTF-8")
    try:
        parsed = parse_qs(query_string, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid_parameter", "query string is not valid UTF-8 form data") from None
    query = {}
    for name, values in parsed.items():
        if name not in allowed:
            raise BadRequest("invalid_parameter", f"unknown query parameter {name!r} (allowed: {', '.join(allowed)})")
        if len(values) > 1:
            raise BadRequest("invalid_parameter", f"query parameter {name!r} given more than once")
        query[name] = values[0]
    return query


def parse_limit(raw: str | None, rule: Rule) -> int:
    if raw is None:
        return rule.limit
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest("invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")
    return int(raw)
