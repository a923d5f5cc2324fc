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
from servers.core.limits import Limits
from servers.core.refusals import ABSOLUTE_FORM, bad_head, closing_response, oversize_status
from servers.core.runtime import Settings, open_runtime
from servers.serving import run_server
from servers.workers import serve_until_stopped

ANY_BYTE = rb"(?=[\s\S])"  # zero-width: waits for a byte, consumes nothing


class Refusal(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def refuse(stream: IOStream, api: RecommenderApi, status: int) -> None:
    """The core's JSON error for a request Tornado refuses, then close."""
    try:
        await stream.write(closing_response(api.framework_error(status)))
    except StreamClosedError:
        pass
    finally:
        stream.close()


async def within(future: Awaitable[Any], deadline: float) -> Any:
    return await gen.with_timeout(deadline, future, quiet_exceptions=StreamClosedError)


class LimitedRequest(HTTP1Connection):
    """One request of Tornado's HTTP/1.1 (6.6.1), raising Refusal(status) where Tornado writes a bare 400."""

    deadline: float  # the request's last byte is due by then (IOLoop time)

    def _parse_headers(self, data: bytes) -> tuple[str, httputil.HTTPHeaders]:
        try:
            start_line, headers = super()._parse_headers(data)
            method, target, version = httputil.parse_request_start_line(start_line)
        except httputil.HTTPInputError:
            raise Refusal(400) from None
        if not data.endswith(b"\r\n\r\n") or bad_head(version, target, headers.get("Host")):  # Sanic takes CRLF only
            raise Refusal(400)
        length = headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > self._max_body_size:
            raise Refusal(413)
        if not target.startswith("/") and ABSOLUTE_FORM.match(target):  # served as origin-form, as Sanic does
            start_line = f"{method} {ABSOLUTE_FORM.sub('', target, count=1)} {version}"
        return start_line, headers

    def _read_body(self, code: int, headers: httputil.HTTPHeaders, delegate: Any) -> Awaitable[None] | None:
        try:
            body = super()._read_body(code, headers, delegate)
        except httputil.HTTPInputError:
            raise Refusal(400) from None
        return None if body is None else self._read_body_in_time(body)

    async def _read_body_in_time(self, body: Awaitable[None]) -> None:
        try:
            await within(body, self.deadline)
        except TimeoutError:
            raise Refusal(408) from None
        except httputil.HTTPInputError as error:
            raise Refusal(413 if str(error) == "chunked body too large" else 400) from None


class LimitedConnection(HTTP1ServerConnection):
    """A connection of Tornado's HTTP/1.1 server (6.6.1) that awaits each request head within the limits."""

    server: LimitedHTTPServer
    idle = False  # waiting for a request's first byte

    def close_if_idle(self) -> None:
        if self.idle:
            self.stream.close()

    async def _server_request_loop(self, delegate: httputil.HTTPServerConnectionDelegate) -> None:
        # HTTP1ServerConnection._server_request_loop with _head_arrived in front and Refusal answered
        try:
            while await self._head_arrived():
                conn = LimitedRequest(self.stream, False, self.params, self.context)
                conn.deadline = self.deadline
                try:
                    if not await conn.read_response(delegate.start_request(self, conn)):
                        return
                except Refusal as refusal:
                    await refuse(self.stream, self.server.api, refusal.status)
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

    async def _head_arrived(self) -> bool:
        """The next request's first byte within keepalive_s (else close quietly), then its whole
        head within header_timeout_s of it (else 408) and max_header_bytes (else 414/431); reads nothing."""
        limits, stream, now = self.server.limits, self.stream, self.stream.io_loop.time
        self.idle = True
        try:
            await within(stream.read_until_regex(ANY_BYTE), now() + limits.keepalive_s)
        except TimeoutError:
            stream.close()
            return False
        except StreamClosedError:
            return False
        finally:
            self.idle = False
        self.deadline = now() + limits.header_timeout_s
        try:
            oversize = await within(stream.read_until_regex(self.server.head), self.deadline)
        except TimeoutError:
            oversize = None
        except StreamClosedError:
            return False
        if oversize == b"":
            return True
        status = 408 if oversize is None else oversize_status(oversize, self.server.limits.max_header_bytes)
        await refuse(stream, self.server.api, status)
        return False


class LimitedHTTPServer(HTTPServer):
    """Tornado's HTTPServer with the Limits (see limited_server): each connection a LimitedConnection, at most
    max_connections of them (503 beyond)."""

    limits: Limits
    api: RecommenderApi
    head: bytes  # regex

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
    server.conn_params.header_timeout = None  # LimitedConnection times the head itself
    server.limits, server.api = limits, api
    # zero-width once a whole head (up to its CRLFCRLF) fits in max_header_bytes; max_header_bytes + 1 bytes if not
    n = limits.max_header_bytes
    server.head = rb"\A(?:(?=[\s\S]{0,%d}?\r\n\r\n)|[\s\S]{%d})" % (n - 4, n + 1)
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
