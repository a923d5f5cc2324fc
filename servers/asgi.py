"""What the ASGI adapters (Starlette, and FastAPI on it) share: the core opened in each worker's
lifespan, the core's replies as responses, and the refusals the application sees (no route, wrong
method, a body too large, a failure) answered in the core's JSON, as on Sanic, Tornado and aiohttp.

The server (uvicorn or Granian, `servers.asgi_serving`) parses HTTP itself, so what it refuses before
the application sees a request (malformed framing, a head too large, a request too slow) is answered
its own way: the README's parity table lists how. Routing sees the path as sent (`raw_path`, still
percent-encoded: the core decodes a segment the same way on every framework), so `/recommend/items/1%2F2`
is one segment here as elsewhere, and a trailing slash is not redirected.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from servers.core.api import RecommenderApi, Reply
from servers.core.rule_reload import RuleReloader
from servers.core.runtime import Settings, open_runtime
from servers.core.tally import join_shared
from servers.core.variant import ASGI_SERVERS
from servers.serving import parse_server_args

READ_ONLY = ("GET", "HEAD")


def worker_settings(framework: str) -> Settings:
    """In a worker: the settings its server was started with (the command line, which a spawned worker
    inherits as its `sys.argv`)."""
    return parse_server_args(framework, sys.argv[1:], ASGI_SERVERS).settings


def lifespan(settings: Settings) -> Callable[[Any], Any]:
    """A worker's life: a row of the server's shared tally, the core opened (`app.state.api`), the rules
    reloaded when their file changes if asked; counted as serving until it stops."""

    @asynccontextmanager
    async def life(app: Any) -> AsyncIterator[None]:
        tally = join_shared()
        runtime = await open_runtime(settings)
        api = runtime.api
        app.state.api = api
        reloader = RuleReloader(api, signals=False)  # SIGHUP is the server's (a graceful restart of its workers)
        reloader.start()
        tally.add("workers_started", 1)
        tally.set("workers_serving", 1)
        print(f"worker {os.getpid()}: serving", file=sys.stderr, flush=True)
        try:
            yield
        finally:
            api.draining = True
            tally.set("workers_serving", 0)
            await reloader.stop()
            await runtime.close()

    return life


def api_of(request: Request) -> RecommenderApi:
    api: RecommenderApi = request.app.state.api
    return api


def response(api: RecommenderApi, reply: Reply) -> Response:
    """The core's reply as it is: status, body bytes, headers (`Connection: close` once draining)."""
    headers = {**reply.headers, "Connection": "close"} if api.draining else reply.headers
    return Response(reply.body, status_code=reply.status, headers=headers)


def query_string(request: Request) -> str | None:
    """The query string as sent (None if it is not UTF-8: the core's 400)."""
    try:
        return bytes(request.scope.get("query_string", b"")).decode("utf-8")
    except UnicodeDecodeError:
        return None


async def body_of(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it exceeds `limit` bytes (the 413 of the other frameworks)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def refused(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route: 404, wrong method: 405) and failures, in the core's JSON."""
    api = api_of(request)
    path, method = request.scope["path"], request.method
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return response(api, api.unknown_route(method, path))
    if status == 405:
        return response(api, api.method_not_allowed(method, path))
    return response(api, api.framework_error(status))


EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Any]] = {404: refused, 405: refused, Exception: refused}


async def health(request: Request) -> Response:
    api = api_of(request)
    return response(api, api.health())


async def ready(request: Request) -> Response:
    api = api_of(request)
    return response(api, await api.ready())


async def metrics(request: Request) -> Response:
    api = api_of(request)
    if request.method != "GET":  # Starlette answers HEAD wherever GET is allowed; /metrics is GET only elsewhere
        return response(api, api.method_not_allowed(request.method, request.scope["path"]))
    return response(api, api.metrics_reply())


async def events(request: Request) -> Response:
    api = api_of(request)
    body = await body_of(request, api.limits.max_body_bytes)
    if body is None:
        refusal = response(api, api.framework_error(413))
        refusal.headers["Connection"] = "close"
        return refusal
    return response(api, await api.record_events(body))


class RawPath:
    """ASGI middleware: routing on the path as sent (`raw_path`), as the other adapters route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("raw_path"):
            scope = {**scope, "path": bytes(scope["raw_path"]).decode("latin-1")}
        await self.app(scope, receive, send)
