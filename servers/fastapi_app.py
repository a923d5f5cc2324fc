"""The recommender on FastAPI, written as FastAPI is written: its routing, path and query parameters
declared (as strings: the core checks them, so every framework refuses the same input with the same
JSON), the core's reply bytes passed through as they are; served by uvicorn or Granian
(`servers.asgi_serving`).

Run: python -m servers.fastapi_app --server uvicorn|granian --mongo-uri URI [--port P] [variant flags]
"""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request, Response
from starlette.middleware import Middleware

from servers import asgi
from servers.asgi_serving import run_asgi


def create_app() -> FastAPI:
    """The application of one worker (a factory: each worker builds its own)."""
    app = FastAPI(
        title="reclab recommender",
        openapi_url=None,  # the same routes as on every framework: no /docs or /openapi.json
        redirect_slashes=False,
        middleware=[Middleware(asgi.RawPath)],
        exception_handlers=asgi.EXCEPTION_HANDLERS,
        lifespan=asgi.lifespan(asgi.worker_settings("fastapi")),
    )

    @app.get("/recommend/items/{item_id}")
    async def recommend_items(
        item_id: str, request: Request, service: str | None = None, limit: str | None = None, user: str | None = None
    ) -> Response:
        """Items like `item_id` (for `user`, if given) under the service's rules."""
        api = asgi.api_of(request)
        return asgi.response(api, await api.recommend_items(item_id, asgi.query_string(request)))

    @app.get("/recommend/users/{user_id}")
    async def recommend_users(user_id: str, request: Request, service: str | None = None, limit: str | None = None) -> Response:
        """Items for `user_id` under the service's rules."""
        api = asgi.api_of(request)
        return asgi.response(api, await api.recommend_users(user_id, asgi.query_string(request)))

    app.add_api_route("/events", asgi.events, methods=["POST"], include_in_schema=True)
    app.add_api_route("/health", asgi.health, methods=list(asgi.READ_ONLY))
    app.add_api_route("/ready", asgi.ready, methods=list(asgi.READ_ONLY))
    app.add_api_route("/metrics", asgi.metrics, methods=["GET"])
    return app


def main(argv: list[str] | None = None) -> None:
    run_asgi("fastapi", "servers.fastapi_app:create_app", argv)


if __name__ == "__main__":
    main(sys.argv[1:])
