"""The recommender on Tornado: routing and copying the core's replies, nothing else.

Run: python -m servers.tornado_app --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import asyncio
import signal
import sys

import tornado.web

from servers.core.api import RecommenderApi, Reply
from servers.core.runtime import Settings, open_runtime
from servers.serving import parse_server_args


class CoreHandler(tornado.web.RequestHandler):
    """Base handler: copies a core reply out; any other method or unknown path gets the core's JSON error."""

    def initialize(self, api: RecommenderApi) -> None:
        self.api = api

    def send(self, reply: Reply) -> None:
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


class HealthHandler(CoreHandler):
    def get(self) -> None:
        self.send(self.api.health())


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
            (r"/health", HealthHandler, args),
            (r"/metrics", MetricsHandler, args),
        ],
        default_handler_class=UnknownRouteHandler,
        default_handler_args=args,
    )


async def serve(settings: Settings, host: str, port: int) -> None:
    core = await open_runtime(settings)
    server = build_app(core.api).listen(port, address=host, xheaders=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        server.stop()
        await core.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_server_args("tornado", argv)
    loop_factory = None
    if args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop
    asyncio.run(serve(args.settings, args.host, args.port), loop_factory=loop_factory)


if __name__ == "__main__":
    main(sys.argv[1:])
