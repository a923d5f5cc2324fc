"""What both framework adapters share outside the request path: command-line flags (reclab's CLI uses the
same ones) and settings."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from servers.core.rules import DEFAULT_RULES
from servers.core.runtime import Settings
from servers.core.variant import CACHES, DRIVERS, GROUPINGS, LOOPS, STRATEGIES, Variant


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """The variant switches as command-line flags (the same on every command that takes them)."""
    defaults = Variant()
    parser.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy, help="how independent db calls are awaited")
    parser.add_argument("--grouping", choices=GROUPINGS, default=defaults.grouping, help="$group/$filter in MongoDB or in Python")
    parser.add_argument("--cache", choices=CACHES, default=defaults.cache, help="cache for reference data")
    parser.add_argument("--driver", choices=DRIVERS, default=defaults.driver, help="async MongoDB driver")


def variant_from_args(args: argparse.Namespace) -> Variant:
    return Variant(strategy=args.strategy, grouping=args.grouping, cache=args.cache, driver=args.driver)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mongo-uri", default=os.environ.get("RECLAB_MONGO_URI"), help="MongoDB URI (env RECLAB_MONGO_URI)")
    parser.add_argument("--redis-url", default=os.environ.get("RECLAB_REDIS_URL"), help="Redis URL (env RECLAB_REDIS_URL)")
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="service rules (TOML)")


def add_loop_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loop", choices=LOOPS, default=LOOPS[0], help="the event loop the server runs on")


@dataclass(frozen=True)
class ServerArgs:
    settings: Settings
    host: str
    port: int
    loop: str


def parse_server_args(framework: str, argv: list[str] | None = None) -> ServerArgs:
    parser = argparse.ArgumentParser(prog=f"servers.{framework}_app", description=f"The reclab recommender on {framework}.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    add_loop_argument(parser)
    parser.add_argument("--cache-namespace", default="", help="prefix of every Redis key (one per benchmark run)")
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
        cache_namespace=args.cache_namespace,
    )
    return ServerArgs(settings, args.host, args.port, args.loop)
