"""What the framework adapters share outside the request path: command-line flags (reclab's CLI uses the
same ones), settings, and their main (a master and its worker, `servers.workers`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from servers.core.admission import ADMISSIONS, DEFAULT_ADMISSION
from servers.core.drivers import write_concern_of
from servers.core.limits import Limits
from servers.core.rules import DEFAULT_RULES, SpecError, load_rules
from servers.core.runtime import Settings
from servers.core.variant import CACHES, DRIVERS, GROUPINGS, LOOPS, STRATEGIES, Variant
from servers.workers import run_master


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    """The variant switches as command-line flags (the same on every command that takes them)."""
    defaults = Variant()
    parser.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy, help="how independent db calls are awaited")
    parser.add_argument(
        "--grouping", choices=GROUPINGS, default=defaults.grouping,
        help="$group/$filter in MongoDB, in Python, or per-user activity documents kept by writes",
    )  # fmt: skip
    parser.add_argument("--cache", choices=CACHES, default=defaults.cache, help="cache for reference data")
    parser.add_argument("--driver", choices=DRIVERS, default=defaults.driver, help="async MongoDB driver")


def variant_from_args(args: argparse.Namespace) -> Variant:
    return Variant(strategy=args.strategy, grouping=args.grouping, cache=args.cache, driver=args.driver)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mongo-uri", default=os.environ.get("RECLAB_MONGO_URI"), help="MongoDB URI (a password only in env RECLAB_MONGO_URI)"
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("RECLAB_REDIS_URL"), help="Redis URL (a password only in env RECLAB_REDIS_URL)"
    )
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES, help="service rules (TOML)")


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """How a server holds its rules (beside `--rules`, which every command takes)."""
    parser.add_argument(
        "--watch-rules", action="store_true", help="reload the rules when their file changes (SIGHUP always does)"
    )
    parser.add_argument("--rules-as-code", action="store_true", help="run each rule's max_price and boost as rule code")


def rule_arguments(rules_as_code: bool, watch_rules: bool) -> list[str]:
    """Those settings as a server's command-line arguments."""
    return ["--rules-as-code"] * rules_as_code + ["--watch-rules"] * watch_rules


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    parser.add_argument("--deadline-ms", type=int, default=defaults.deadline_ms, help="answer 503 after this long")
    parser.add_argument(
        "--limit", action="append", default=[], metavar="NAME=VALUE",
        help=f"any other limit (repeatable): {', '.join(f for f in defaults.as_dict() if f != 'deadline_ms')}",
    )  # fmt: skip


def limits_from_args(deadline_ms: int, assignments: list[str]) -> Limits:
    """The limits given on the command line (`--deadline-ms`, `--limit NAME=VALUE`); a database timeout
    not given is cut to the deadline. Raises ValueError naming a bad one."""
    defaults = Limits().as_dict()
    values: dict[str, Any] = {"deadline_ms": deadline_ms}
    for assignment in assignments:
        name, _, raw = assignment.partition("=")
        if name not in defaults or name == "deadline_ms":
            raise ValueError(f"--limit {assignment}: unknown limit {name!r} (known: {', '.join(defaults)})")
        try:
            values[name] = type(defaults[name])(raw)
        except ValueError:
            raise ValueError(f"--limit {assignment}: {raw!r} is not a {type(defaults[name]).__name__}") from None
    values.setdefault("db_timeout_ms", min(defaults["db_timeout_ms"], deadline_ms))
    return replace(Limits(), **values)


def limit_arguments(limits: Limits) -> list[str]:
    """`limits` as command-line arguments of a server (the ones that differ from the defaults)."""
    defaults = Limits().as_dict()
    changed = {name: value for name, value in limits.as_dict().items() if value != defaults[name] and name != "deadline_ms"}
    return ["--deadline-ms", str(limits.deadline_ms), *(arg for n, v in changed.items() for arg in ("--limit", f"{n}={v}"))]


def add_loop_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loop", choices=LOOPS, default=LOOPS[0], help="the event loop the server runs on")


def add_admission_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admission", choices=ADMISSIONS, default=DEFAULT_ADMISSION,
        help="admission control: refuse at once (503) what cannot be answered in time (servers.core.admission)",
    )  # fmt: skip


@dataclass(frozen=True)
class ServerArgs:
    settings: Settings
    host: str
    port: int
    loop: str
    workers: int = 1
    server: str | None = None  # the ASGI server an ASGI framework runs on (None: the framework serves itself)


def positive(text: str) -> int:
    """An argparse type: an integer from 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_server_args(framework: str, argv: list[str] | None = None, servers: tuple[str, ...] = ()) -> ServerArgs:
    """A framework adapter's command line; `servers`: the servers it runs on (`--server`), if not its own."""
    parser = argparse.ArgumentParser(prog=f"servers.{framework}_app", description=f"The reclab recommender on {framework}.")
    if servers:
        parser.add_argument("--server", choices=servers, default=servers[0], help="the ASGI server it runs on")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    add_loop_argument(parser)
    add_admission_argument(parser)
    parser.add_argument("--cache-namespace", default="", help="prefix of every Redis key (one per benchmark run)")
    parser.add_argument("--workers", type=positive, default=1, help="worker processes on the one socket (default 1)")
    add_variant_arguments(parser)
    add_connection_arguments(parser)
    add_rule_arguments(parser)
    add_limit_arguments(parser)
    parser.add_argument("--write-concern", default="1", help="MongoDB's w for writes: members (from 1) or majority")
    parser.add_argument("--no-pace", action="store_true", help="no reference work every 50 ms (servers.core.pace): for a "
                        "server whose instructions the lab counts, which would count that work by wall time")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.mongo_uri:
        parser.error("--mongo-uri (or RECLAB_MONGO_URI) is required; `reclab serve` starts an embedded MongoDB for you")
    try:
        limits = limits_from_args(args.deadline_ms, args.limit)
    except ValueError as error:
        parser.error(str(error))
    settings = Settings(
        mongo_uri=args.mongo_uri,
        redis_url=args.redis_url,
        variant=variant_from_args(args),
        rules_path=args.rules,
        framework=f"{framework}@{args.server}" if servers else framework,  # what /health and /metrics call it
        cache_namespace=args.cache_namespace,
        limits=limits,
        rules_as_code=args.rules_as_code,
        watch_rules=args.watch_rules,
        write_concern=args.write_concern,
        admission=args.admission,
        pace=not args.no_pace,
    )
    try:
        write_concern_of(args.write_concern)
    except ValueError as error:
        parser.error(str(error))
    try:  # read here once so that a bad file is one line, not a traceback from every worker
        load_rules(args.rules, args.rules_as_code)
    except SpecError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    return ServerArgs(settings, args.host, args.port, args.loop, args.workers, args.server if servers else None)


ServeWorker = Callable[[Settings, socket.socket, Callable[[], None]], Coroutine[Any, Any, None]]


def run_server(framework: str, serve: ServeWorker, argv: list[str] | None) -> NoReturn:
    """A framework adapter's main: a master on the address from the command line, its worker running
    `serve(settings, sock, ready)` on the event loop asked for (see servers.workers)."""
    args = parse_server_args(framework, argv)
    loop_factory = None
    if args.loop == "uvloop":
        import uvloop

        loop_factory = uvloop.new_event_loop

    def worker(sock: socket.socket, ready: Callable[[], None]) -> None:
        asyncio.run(serve(args.settings, sock, ready), loop_factory=loop_factory)

    sys.exit(run_master(args.host, args.port, worker, args.workers))
