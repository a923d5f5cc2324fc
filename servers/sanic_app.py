"""The recommender on Sanic: routing and copying the core's replies, nothing else.

Run: python -m servers.sanic_app --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from time import monotonic as current_time
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed, NotFound, SanicException
from sanic.http import Http, Stage
from sanic.models.server_types import ConnInfo
from sanic.response import HTTPResponse, raw
from sanic.server.protocols.http_protocol import HttpProtocol

from servers.core.api import Reply
from servers.core.framing import RequestStream, is_last_request
from servers.core.refusals import closing_response
from servers.core.runtime import Runtime, Settings, open_runtime
from servers.serving import run_server
from servers.workers import serve_until_stopped


class Refusal(SanicException):
    quiet = True


class LimitedHttp(Http):
    """Sanic's HTTP/1.1 with the body read (and held to REQUEST_MAX_SIZE) before routing, as elsewhere, and
    a connection kept or closed by RFC 9112 (Sanic closes on any Connection option but `keep-alive`)."""

    async def http1_request_header(self) -> None:
        await super().http1_request_header()
        connection = [value.encode("latin-1") for value in self.request.headers.getall("connection", [])]
        self.keep_alive = not is_last_request(self.request.version.encode(), connection)
        if self.request_body:
            try:
                await self.request.receive_body()
            except BaseException:  # a refusal, or the connection lost: Sanic must not wait for the rest
                self.request_body = None
                raise


class LimitedProtocol(HttpProtocol):
    """Refuses connections beyond the limit (503); passes Sanic only what the shared RequestStream lets
    through, and raises its refusals where Sanic next waits for bytes, so they follow every earlier reply."""

    HTTP_CLASS = LimitedHttp
    __slots__ = ("framing",)  # Sanic's protocols have no __dict__

    def connection_made(self, transport: Any) -> None:
        self.framing: RequestStream | None = None  # None: a connection refused at once
        if len(self.connections) < self.app.ctx.limits.max_connections:
            self.framing = RequestStream(self.app.ctx.limits, self._refused, self.loop)
            return super().connection_made(transport)
        self.transport, self.conn_info = transport, ConnInfo(transport, unix=self._unix)
        transport.write(closing_response(self.app.ctx.api.framework_error(503)))
        transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.framing is not None:
            self.framing.close()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.framing is None or not data:
            return super().data_received(data)
        if passed := self.framing.feed(data):
            super().data_received(passed)

    def _refused(self, status: int) -> None:
        if self._data_received is not None:
            self._data_received.set()  # wakes Sanic if it waits for bytes

    async def receive_more(self) -> None:
        refusal = self.framing.refusal if self.framing is not None else None
        if not refusal:
            await super().receive_more()
            refusal = self.framing.refusal if self.framing is not None else None
        if refusal and self.http is not None and self.http.stage is Stage.REQUEST:
            raise Refusal(status_code=refusal)

    def close_if_idle(self) -> bool:
        if self.framing is not None and self.framing.receiving:
            return False  # a request is arriving (its head is still held back, Sanic sees nothing yet)
        return super().close_if_idle()

    def check_timeouts(self) -> None:
        if self.framing is not None and self.framing.receiving and self.http.stage in (Stage.IDLE, Stage.REQUEST):
            self._time = current_time()  # the RequestStream times a request being received, to the 408
        super().check_timeouts()


def build_app(settings: Settings) -> Sanic:
    app = Sanic("reclab", configure_logging=False, strict_slashes=True)
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    limits = app.ctx.limits = settings.limits
    app.config.update(
        REQUEST_TIMEOUT=limits.header_timeout_s,  # never reached: the RequestStream answers 408 first
        KEEP_ALIVE_TIMEOUT=limits.keepalive_s,
        REQUEST_MAX_HEADER_SIZE=limits.max_header_bytes - 3,  # Sanic measures the head without its CRLFCRLF, < this
        REQUEST_MAX_SIZE=limits.max_body_bytes,
    )
    state: dict[str, Runtime] = {}

    def send(request: Request, reply: Reply) -> HTTPResponse:
        if state["core"].api.draining:  # the client's next request goes to the new worker
            request.stream.keep_alive = False  # type: ignore[union-attr]
        return raw(reply.body, status=reply.status, headers=reply.headers, content_type=reply.headers["Content-Type"])

    @app.before_server_start
    async def open_core(app: Sanic) -> None:
        state["core"] = core = await open_runtime(settings)
        app.ctx.api = core.api

    @app.after_server_stop
    async def close_core(app: Sanic) -> None:
        await state["core"].close()

    def query_of(request: Request) -> str | None:
        try:
            return request.query_string
        except UnicodeDecodeError:
            return None

    @app.get("/recommend/items/<item_id:str>")  # Sanic passes the segment still percent-encoded
    async def recommend_items(request: Request, item_id: str) -> HTTPResponse:
        return send(request, await state["core"].api.recommend_items(item_id, query_of(request)))

    @app.get("/recommend/users/<user_id:str>")
    async def recommend_users(request: Request, user_id: str) -> HTTPResponse:
        return send(request, await state["core"].api.recommend_users(user_id, query_of(request)))

    @app.post("/events")
    async def record_events(request: Request) -> HTTPResponse:
        return send(request, await state["core"].api.record_events(request.body or b""))

    @app.route("/health", methods=["GET", "HEAD"])
    async def health(request: Request) -> HTTPResponse:
        return send(request, state["core"].api.health())

    @app.route("/ready", methods=["GET", "HEAD"])
    async def ready(request: Request) -> HTTPResponse:
        return send(request, await state["core"].api.ready())

    @app.get("/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        return send(request, state["core"].api.metrics_reply())

    @app.exception(NotFound)
    async def unknown_route(request: Request, exception: Exception) -> HTTPResponse:
        return send(request, state["core"].api.unknown_route(request.method, request.path))

    @app.exception(MethodNotAllowed)
    async def wrong_method(request: Request, exception: Exception) -> HTTPResponse:
        return send(request, state["core"].api.method_not_allowed(request.method, request.path))

    @app.exception(Exception)
    async def anything_else(request: Request, exception: Exception) -> HTTPResponse:
        status = exception.status_code if isinstance(exception, SanicException) else 500
        return send(request, state["core"].api.framework_error(status))

    return app


async def serve(settings: Settings, sock: socket.socket, ready: Callable[[], None]) -> None:
    """One worker: serve on the master's socket until SIGTERM or SIGINT, then drain (see servers.workers)."""
    app = build_app(settings)
    server = await app.create_server(  # not accepting yet: the core opens first
        sock=sock, protocol=LimitedProtocol, access_log=False, return_asyncio_server=True,
        asyncio_server_kwargs={"start_serving": False},
    )  # fmt: skip
    assert server is not None and server.server is not None
    await server.startup()
    await server.before_start()  # opens the core
    await server.server.start_serving()
    await server.after_start()
    connections = server.connections

    def close_idle() -> None:
        for connection in list(connections):
            connection.close_if_idle()

    try:
        await serve_until_stopped(app.ctx.api, settings.limits, ready, server.server.close, lambda: len(connections), close_idle)
        for connection in list(connections):
            connection.close()
    finally:
        await server.before_stop()
        await server.after_stop()  # closes the core


def main(argv: list[str] | None = None) -> None:
    run_server("sanic", serve, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
