"""The recommender on Starlette (bare): its routes and the core's replies, nothing else; served by uvicorn
or Granian (`servers.asgi_serving`).

Run: python -m servers.starlette_app --server uvicorn|granian --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import sys

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servers import asgi
from servers.asgi_serving import run_asgi


async def recommend_items(request: Request) -> Response:
    api = asgi.api_of(request)
    return asgi.response(api, await api.recommend_items(request.path_params["item_id"], asgi.query_string(request)))


async def recommend_users(request: Request) -> Response:
    api = asgi.api_of(request)
    return asgi.response(api, await api.recommend_users(request.path_params["user_id"], asgi.query_string(request)))


def create_app() -> Starlette:
    """The application of one worker (a factory: each worker builds its own)."""
    recommend = [
        Route("/recommend/items/{item_id}", recommend_items, methods=["GET"]),
        Route("/recommend/users/{user_id}", recommend_users, methods=["GET"]),
    ]
    for route in recommend:  # GET only, as elsewhere (Starlette adds HEAD wherever GET is)
        route.methods = {"GET"}
    routes = [
        *recommend,
        Route("/events", asgi.events, methods=["POST"]),
        Route("/health", asgi.health, methods=list(asgi.READ_ONLY)),
        Route("/ready", asgi.ready, methods=list(asgi.READ_ONLY)),
        Route("/metrics", asgi.metrics, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(asgi.RawPath)],
        exception_handlers=asgi.EXCEPTION_HANDLERS,
        lifespan=asgi.lifespan(asgi.worker_settings("starlette")),
    )
    app.router.redirect_slashes = False  # `/recommend/items/7/` is no route, as elsewhere
    return app


def main(argv: list[str] | None = None) -> None:
    run_asgi("starlette", "servers.starlette_app:create_app", argv)


if __name__ == "__main__":
    main(sys.argv[1:])
