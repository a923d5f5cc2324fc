"""The recommender on Sanic: routing and copying the core's replies, nothing else.

Run: python -m servers.sanic_app --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import sys

from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed, NotFound, SanicException
from sanic.response import HTTPResponse, raw

from servers.core.api import Reply
from servers.core.runtime import Runtime, Settings, open_runtime
from servers.serving import parse_server_args


def build_app(settings: Settings, loop: str = "uvloop") -> Sanic:
    app = Sanic("reclab", configure_logging=False, strict_slashes=True)
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    app.config.USE_UVLOOP = loop == "uvloop"
    state: dict[str, Runtime] = {}

    def send(reply: Reply) -> HTTPResponse:
        return raw(reply.body, status=reply.status, headers=reply.headers, content_type=reply.headers["Content-Type"])

    @app.before_server_start
    async def open_core(app: Sanic) -> None:
        state["core"] = await open_runtime(settings)

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
        return send(await state["core"].api.recommend_items(item_id, query_of(request)))

    @app.get("/recommend/users/<user_id:str>")
    async def recommend_users(request: Request, user_id: str) -> HTTPResponse:
        return send(await state["core"].api.recommend_users(user_id, query_of(request)))

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return send(state["core"].api.health())

    @app.get("/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        return send(state["core"].api.metrics_reply())

    @app.exception(NotFound)
    async def unknown_route(request: Request, exception: Exception) -> HTTPResponse:
        return send(state["core"].api.unknown_route(request.method, request.path))

    @app.exception(MethodNotAllowed)
    async def wrong_method(request: Request, exception: Exception) -> HTTPResponse:
        return send(state["core"].api.method_not_allowed(request.method, request.path))

    @app.exception(Exception)
    async def anything_else(request: Request, exception: Exception) -> HTTPResponse:
        status = exception.status_code if isinstance(exception, SanicException) else 500
        return send(state["core"].api.framework_error(status))

    return app


def main(argv: list[str] | None = None) -> None:
    args = parse_server_args("sanic", argv)
    app = build_app(args.settings, args.loop)
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main(sys.argv[1:])
