"""The recommender on aiohttp: routing and copying the core's replies, nothing else.

aiohttp's low-level server (`aiohttp.web.Server`: a request handler, no application or router): the
six routes are matched here on the raw path, so the core gets the path segment and the query string
as sent, as on the other frameworks. `LimitedHandler` (aiohttp's per-connection protocol) applies the
limits as Tornado does: 400/414/431 for a head the parser refuses, 408 for a head not received within
`header_timeout_s` of its first byte, 503 beyond `max_connections`, each answered in the core's JSON.

Run: python -m servers.aiohttp_app --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from servers.core.api import RecommenderApi, Reply
from servers.core.limits import Limits
from servers.core.refusals import bad_head, closing_response, oversize_status
from servers.core.runtime import Settings, open_runtime
from servers.serving import run_server
from servers.workers import serve_until_stopped

RECOMMEND = {"items": RecommenderApi.recommend_items, "users": RecommenderApi.recommend_users}
READ_ONLY = ("GET", "HEAD")


class LimitedHandler(RequestHandler):
    """One connection: the connection limit, the request head's time limit, refusals in the core's JSON."""

    def __init__(self, manager: LimitedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._api = manager.api
        self._limits = manager.limits
        self._head_start = b""  # the first bytes of the request head being received
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager = self._manager
        if manager is not None and len(manager.connections) >= self._limits.max_connections:
            self._manager = None  # never registered: nothing to unregister when it closes
            self._refuse(transport, 503)
            return
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and not self._request_in_progress:  # a new request's first bytes
            self._head_start = b""
            self._head_timer = asyncio.get_running_loop().call_later(self._limits.header_timeout_s, self._head_too_slow)
        if len(self._head_start) < self._limits.max_header_bytes:
            self._head_start = (self._head_start + data)[: self._limits.max_header_bytes]
        super().data_received(data)
        if self._messages or self._request_in_progress:  # the head is complete
            self._stop_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """A request the parser refused (or a failure in the handler): the core's JSON, then close."""
        if isinstance(exc, LineTooLong):
            status = oversize_status(self._head_start, self._limits.max_header_bytes)
        elif isinstance(exc, HttpProcessingError):
            status = 400
        response = to_response(self._api.framework_error(status))
        response.force_close()
        return response

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport is not None and not self._request_in_progress:
            self._refuse(self.transport, 408)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, transport: asyncio.BaseTransport, status: int) -> None:
        transport.write(closing_response(self._api.framework_error(status)))  # type: ignore[attr-defined]
        transport.close()


class LimitedServer(web.Server):
    """aiohttp's low-level server making `LimitedHandler` connections."""

    def __init__(self, handler: Callable[..., Any], api: RecommenderApi, limits: Limits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.api = api
        self.limits = limits

    def __call__(self) -> RequestHandler:
        return LimitedHandler(self, loop=self._loop, **self._kwargs)


def to_response(reply: Reply) -> web.Response:
    return web.Response(body=reply.body, status=reply.status, headers=reply.headers)


def make_handler(api: RecommenderApi, limits: Limits) -> Callable[[web.BaseRequest], Any]:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        response = to_response(await answer(api, limits, request))
        if api.draining:  # the client's next request goes to the new worker
            response.force_close()
        return response

    return handle


async def answer(api: RecommenderApi, limits: Limits, request: web.BaseRequest) -> Reply:
    """The route's reply, after the head rules and the body limit (read before routing, as elsewhere)."""
    hosts = request.headers.getall("Host", None)
    version = f"HTTP/{request.version.major}.{request.version.minor}"
    if bad_head(version, request.raw_path, ",".join(hosts) if hosts else None):
        return api.framework_error(400)
    if (request.content_length or 0) > limits.max_body_bytes:
        return api.framework_error(413)
    body = b""
    if request.body_exists:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return api.framework_error(413)
        if len(body) > limits.max_body_bytes:
            return api.framework_error(413)
    method, path, query = request.method, request.rel_url.raw_path, request.rel_url.raw_query_string
    if path in ("/health", "/ready", "/metrics"):
        if method not in (READ_ONLY if path != "/metrics" else ("GET",)):
            return api.method_not_allowed(method, path)
        if path == "/health":
            return api.health()
        return await api.ready() if path == "/ready" else api.metrics_reply()
    if path == "/events":
        return await api.record_events(body) if method == "POST" else api.method_not_allowed(method, path)
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "recommend" and parts[2] in RECOMMEND and parts[3]:
        if method != "GET":
            return api.method_not_allowed(method, path)
        return await RECOMMEND[parts[2]](api, parts[3], query)
    return api.unknown_route(method, path)


async def serve(settings: Settings, sock: socket.socket, ready: Callable[[], None]) -> None:
    """One worker: serve on the master's socket until SIGTERM or SIGINT, then drain (see servers.workers)."""
    core = await open_runtime(settings)
    limits = settings.limits
    server = LimitedServer(
        make_handler(core.api, limits),
        core.api,
        limits,
        keepalive_timeout=limits.keepalive_s,
        max_line_size=limits.max_header_bytes,
        max_field_size=limits.max_header_bytes,
        access_log=None,
    )
    listener = await asyncio.get_running_loop().create_server(server, sock=sock)

    def close_idle() -> None:
        for connection in server.connections:
            if not connection._request_in_progress:
                connection.close()

    try:
        await serve_until_stopped(core.api, limits, ready, listener.close, lambda: len(server.connections), close_idle)
        await server.shutdown(limits.deadline_ms / 1000)
    finally:
        await core.close()


def main(argv: list[str] | None = None) -> None:
    run_server("aiohttp", serve, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
