"""The recommender on aiohttp: routing and copying the core's replies, nothing else.

aiohttp's low-level server (`aiohttp.web.Server`: a request handler, no application or router): the
six routes are matched here on the raw path, so the core gets the path segment and the query string
as sent, as on the other frameworks. `LimitedHandler` (aiohttp's per-connection protocol) applies the
limits as the other adapters do: the shared `RequestStream` (servers.core.framing) decides which requests
are refused (400, 408, 413, 414, 431) before aiohttp's parser sees them, and 503 beyond
`max_connections`, each answered in the core's JSON.

Run: python -m servers.aiohttp_app --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from servers.core.api import RecommenderApi, Reply
from servers.core.framing import RequestStream
from servers.core.limits import Limits
from servers.core.refusals import Refused, closing_response
from servers.core.runtime import Settings, open_runtime
from servers.serving import run_server
from servers.workers import serve_until_stopped

RECOMMEND = {"items": RecommenderApi.recommend_items, "users": RecommenderApi.recommend_users}
READ_ONLY = ("GET", "HEAD")


class LimitedHandler(RequestHandler):
    """One connection: the connection limit, the shared RequestStream in front of aiohttp's parser, its
    refusals answered in order (as a queued message, or through the body being read), in the core's JSON."""

    def __init__(self, manager: LimitedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._api = manager.api
        self._limits = manager.limits
        self._framing: RequestStream | None = None  # None: a connection refused at once
        self._payload: StreamReader | None = None  # the body of the last request passed to the parser

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager = self._manager
        if manager is not None and len(manager.connections) >= self._limits.max_connections:
            self._manager = None  # never registered: nothing to unregister when it closes
            transport.write(closing_response(self._api.framework_error(503)))  # type: ignore[attr-defined]
            transport.close()
            return
        self._framing = RequestStream(self._limits, self._refused, self._loop)
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._framing is not None:
            self._framing.close()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._framing is None or not data:
            return super().data_received(data)
        if passed := self._framing.feed(data):
            parsed = self._request_count
            super().data_received(passed)
            if self._request_count > parsed:
                self._payload = self._messages[-1][1]

    def close_if_idle(self) -> None:
        """Closes the connection unless a request is being received or handled."""
        if not self._request_in_progress and not (self._framing is not None and self._framing.receiving):
            self.close()

    def _process_keepalive(self) -> None:
        if self._framing is not None and self._framing.receiving:
            self._keepalive_handle = None  # the RequestStream times a request being received, to its 408
            return
        super()._process_keepalive()

    def _refused(self, status: int) -> None:
        if self.transport is None or self._force_close:
            return
        if self._framing is not None and self._framing.in_body and self._payload is not None:
            self._payload.set_exception(Refused(status))  # answered by the handler reading that body
            return
        self._messages.append((_ErrInfo(status=status, exc=Refused(status), message=""), EMPTY_PAYLOAD))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        """A refused request (or a failure in the handler): the core's JSON, then close."""
        return refusal(self._api, 400 if isinstance(exc, HttpProcessingError) else status)


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


def refusal(api: RecommenderApi, status: int) -> web.Response:
    response = to_response(api.framework_error(status))
    response.headers["Connection"] = "close"  # announced, as the other frameworks do
    response.force_close()
    return response


def make_handler(api: RecommenderApi) -> Callable[[web.BaseRequest], Any]:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        expects = request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1)
        if expects and request.body_exists:
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # as Sanic and Tornado do
        try:  # read before routing, as elsewhere
            body = await request.read() if request.body_exists else b""
        except Refused as refused:
            return refusal(api, refused.status)
        response = to_response(await answer(api, request, body))
        if api.draining:  # the client's next request goes to the new worker
            response.force_close()
        return response

    return handle


async def answer(api: RecommenderApi, request: web.BaseRequest, body: bytes) -> Reply:
    """The route's reply."""
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
        make_handler(core.api),
        core.api,
        limits,
        keepalive_timeout=limits.keepalive_s,
        max_line_size=limits.max_header_bytes,
        max_field_size=limits.max_header_bytes,
        max_headers=limits.max_headers,
        access_log=None,
    )
    listener = await asyncio.get_running_loop().create_server(server, sock=sock)

    def close_idle() -> None:
        for connection in server.connections:
            if isinstance(connection, LimitedHandler):
                connection.close_if_idle()

    try:
        await serve_until_stopped(core.api, limits, ready, listener.close, lambda: len(server.connections), close_idle)
        await server.shutdown(limits.deadline_ms / 1000)
    finally:
        await core.close()


def main(argv: list[str] | None = None) -> None:
    run_server("aiohttp", serve, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
