"""What both framework adapters share outside the request path: command-line flags and settings."""

from __future__ import annotations

import argparse

from servers.core.runtime import Settings, add_connection_arguments, add_variant_arguments, variant_from_args


def parse_server_args(framework: str, argv: list[str] | None = None) -> tuple[Settings, str, int]:
    parser = argparse.ArgumentParser(prog=f"servers.{framework}_app", description=f"The reclab recommender on {framework}.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    add_variant_arguments(parser)
    add_connection_arguments(parser)
    args = parser.parse_args(argv)
    if not args.mongo_uri:
        parser.error("--mongo-uri (or RECLAB_MONGO_URI) is required; `reclab serve` starts an embedded MongoDB for you")
    settings = Settings(
        mongo_uri=args.mongo_uri,
        redis_url=args.redis_url,
        variant=variant_from_args(args),
        rules_path=args.rules,
        framework=framework,
    )
    return settings, args.host, args.port
