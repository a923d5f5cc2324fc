"""The recommender on Tornado: routing and copying the core's replies, nothing else.

Run: python -m servers.tornado_app --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.web
from tornado import gen, httputil
from tornado.http1connection import HTTP1Connection, HTTP1ServerConnection
from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError
from tornado.log import gen_log

from servers.core.api import RecommenderApi, Reply
from servers.core.framing import RequestStream
from servers.core.limits import Limits
from servers.core.refusals import closing_response
from servers.core.runtime import Settings, open_runtime
from servers.serving import run_server
from servers.workers import serve_until_stopped

ANY_BYTE = rb"(?=[\s\S])"  # zero-width: waits for a byte, consumes nothing


async def refuse(stream: IOStream, api: RecommenderApi, status: int) -> None:
    """The core's JSON error for a request Tornado must not serve, then close."""
    try:
        await stream.write(closing_response(api.framework_error(status)))
    except StreamClosedError:
        pass
    finally:
        stream.close()


async def within(future: Awaitable[Any], deadline: float) -> Any:
    return await gen.with_timeout(deadline, future, quiet_exceptions=StreamClosedError)


class FramedStream(IOStream):
    """A connection's stream that hands Tornado only what the shared RequestStream lets through. A refusal
    is answered once Tornado reads again (it reads a request only after answering the one before)."""

    def __init__(self, connection: socket.socket, api: RecommenderApi, limits: Limits, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self.api = api
        self.framing = RequestStream(limits, self._refused, asyncio.get_running_loop())
        self.answering = False

    def read_from_fd(self, buf: bytearray | memoryview) -> int | None:
        if self.framing.refusal is not None:
            self._refused(self.framing.refusal)
            return 0 if super().read_from_fd(buf) == 0 else None  # the refused request's rest is dropped
        with memoryview(buf) as view, view[: len(buf) - self.framing.held] as room:  # held bytes come out too
            received = super().read_from_fd(room)
        if not received:
            return received
        passed = self.framing.feed(bytes(buf[:received]))
        buf[: len(passed)] = passed
        return len(passed) or None

    def _refused(self, status: int) -> None:
        if self.reading() and not self.answering and not self.closed():
            self.answering = True
            self.io_loop.add_callback(refuse, self, self.api, status)

    def close(self, exc_info: Any = False) -> None:
        self.framing.close()
        super().close(exc_info)


class LimitedConnection(HTTP1ServerConnection):
    """A connection of Tornado's HTTP/1.1 server (6.6.1) on a FramedStream, closed when idle too long."""

    server: LimitedHTTPServer
    stream: FramedStream
    idle = False  # waiting for a request's first byte

    def close_if_idle(self) -> None:
        if self.idle and not self.stream.framing.receiving:
            self.stream.close()

    async def _server_request_loop(self, delegate: httputil.HTTPServerConnectionDelegate) -> None:
        # HTTP1ServerConnection._server_request_loop with _request_arrives in front
        try:
            while await self._request_arrives():
                conn = HTTP1Connection(self.stream, False, self.params, self.context)
                try:
                    if not await conn.read_response(delegate.start_request(self, conn)):
                        return
                except (StreamClosedError, UnsatisfiableReadError, asyncio.CancelledError):
                    return
                except Exception:
                    gen_log.error("Uncaught exception", exc_info=True)
                    conn.close()
                    return
                await asyncio.sleep(0)
        finally:
            delegate.on_close(self)

    async def _request_arrives(self) -> bool:
        """The next request's first byte within keepalive_s, else close quietly (a head the RequestStream
        still holds back keeps the connection open: it ends in the request or its refusal); reads nothing."""
        stream, now = self.stream, self.stream.io_loop.time
        keepalive_s = self.server.limits.keepalive_s
        self.idle = True
        try:
            arrived = stream.read_until_regex(ANY_BYTE)
            while True:
                try:
                    await within(arrived, now() + keepalive_s)
                    return True
                except TimeoutError:
                    if not stream.framing.receiving:
                        stream.close()
                        return False
        except StreamClosedError:
            return False
        finally:
            self.idle = False


class LimitedHTTPServer(HTTPServer):
    """Tornado's HTTPServer with the Limits (see limited_server): each connection a LimitedConnection on a
    FramedStream, at most max_connections of them (503 beyond)."""

    limits: Limits
    api: RecommenderApi

    def _handle_connection(self, connection: socket.socket, address: Any) -> None:
        # TCPServer._handle_connection without TLS (never configured here), making FramedStreams
        sizes = {"max_buffer_size": self.max_buffer_size, "read_chunk_size": self.read_chunk_size}
        self.handle_stream(FramedStream(connection, self.api, self.limits, **sizes), address)

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        if len(self._connections) >= self.limits.max_connections:
            stream.io_loop.add_future(gen.convert_yielded(refuse(stream, self.api, 503)), lambda done: done.result())
            return
        context = _HTTPRequestContext(stream, address, self.protocol, self.trusted_downstream)
        conn = LimitedConnection(stream, self.conn_params, context)
        conn.server = self
        self._connections.add(conn)
        conn.start_serving(self)


def limited_server(app: tornado.web.Application, limits: Limits, api: RecommenderApi) -> LimitedHTTPServer:
    server = LimitedHTTPServer(app, max_header_size=limits.max_header_bytes, max_body_size=limits.max_body_bytes)
    server.conn_params.header_timeout = None  # the RequestStream times a request, to its 408
    server.limits, server.api = limits, api
    return server


class CoreHandler(tornado.web.RequestHandler):
    """Base handler: copies a core reply out; any other method or unknown path gets the core's JSON error."""

    def initialize(self, api: RecommenderApi) -> None:
        self.api = api

    def send(self, reply: Reply) -> None:
        if self.api.draining:  # the client's next request goes to the new worker
            self.request.connection._disconnect_on_finish = True  # type: ignore[union-attr]
        self.set_status(reply.status)
        for name, value in reply.headers.items():
            self.set_header(name, value)
        self.finish(reply.body)

    def write_error(self, status_code: int, **kwargs: object) -> None:
        method, path = self.request.method or "", self.request.path
        if status_code == 404:
            self.send(self.api.unknown_route(method, path))
        elif status_code == 405:
            self.send(self.api.method_not_allowed(method, path))
        else:
            self.send(self.api.framework_error(status_code))

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        return value.decode("latin-1")  # never refuses: the core decodes the raw segment itself

    def raw_segment(self) -> str:
        """The last path segment as sent, still percent-encoded (Tornado unescapes path arguments)."""
        return self.request.path.rsplit("/", 1)[1]

    def query(self) -> str | None:
        try:  # Tornado keeps the request line as latin-1 text; the contract is UTF-8
            return self.request.query.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None

    def compute_etag(self) -> None:
        return None


class ItemsHandler(CoreHandler):
    async def get(self, item_id: str) -> None:
        self.send(await self.api.recommend_items(self.raw_segment(), self.query()))


class UsersHandler(CoreHandler):
    async def get(self, user_id: str) -> None:
        self.send(await self.api.recommend_users(self.raw_segment(), self.query()))


class EventsHandler(CoreHandler):
    async def post(self) -> None:
        self.send(await self.api.record_events(self.request.body))


class HealthHandler(CoreHandler):
    def get(self) -> None:
        self.send(self.api.health())

    head = get


class ReadyHandler(CoreHandler):
    async def get(self) -> None:
        self.send(await self.api.ready())

    head = get


class MetricsHandler(CoreHandler):
    def get(self) -> None:
        self.send(self.api.metrics_reply())


class UnknownRouteHandler(CoreHandler):
    def prepare(self) -> None:
        self.send(self.api.unknown_route(self.request.method or "", self.request.path))


def build_app(api: RecommenderApi) -> tornado.web.Application:
    args = {"api": api}
    return tornado.web.Application(
        [
            (r"/recommend/items/([^/]+)", ItemsHandler, args),
            (r"/recommend/users/([^/]+)", UsersHandler, args),
            (r"/events", EventsHandler, args),
            (r"/health", HealthHandler, args),
            (r"/ready", ReadyHandler, args),
            (r"/metrics", MetricsHandler, args),
        ],
        default_handler_class=UnknownRouteHandler,
        default_handler_args=args,
    )


async def serve(settings: Settings, sock: socket.socket, ready: Callable[[], None]) -> None:
    """One worker: serve on the master's socket until SIGTERM or SIGINT, then drain (see servers.workers)."""
    core = await open_runtime(settings)
    server = limited_server(build_app(core.api), settings.limits, core.api)
    server.add_socket(sock)
    connections = server._connections

    def close_idle() -> None:
        for connection in list(connections):
            if isinstance(connection, LimitedConnection):
                connection.close_if_idle()

    try:
        await serve_until_stopped(core.api, settings.limits, ready, server.stop, lambda: len(connections), close_idle)
        await server.close_all_connections()
    finally:
        await core.close()


def main(argv: list[str] | None = None) -> None:
    run_server("tornado", serve, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
