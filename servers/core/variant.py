"""The design switches of the talk, as one validated configuration value."""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass

STRATEGIES = ("sequential", "gather")
GROUPINGS = ("db", "app", "write")  # write: a per-user activity document kept up to date by every write
CACHES = ("none", "redis", "local", "two-level", "hot")  # hot: two-level, and hot keys' activity in the instance
DRIVERS = ("pymongo", "motor", "wire")  # wire: the bare protocol, a yardstick (servers.core.wire)
FRAMEWORKS = ("sanic", "tornado", "aiohttp", "fastapi", "starlette")
SELF_SERVED = ("sanic", "tornado", "aiohttp")  # frameworks with an HTTP server of their own (and the core's framing)
ASGI_SERVERS = ("uvicorn", "granian")  # the servers the ASGI frameworks (FastAPI, Starlette) run on
# Every framework on every server it runs on, as `framework@server` (a framework with its own server: its name).
STACKS = (*SELF_SERVED, *(f"{fw}@{server}" for server in ASGI_SERVERS for fw in FRAMEWORKS if fw not in SELF_SERVED))
LOOPS = ("uvloop", "asyncio")  # the event loop a server runs on (a setting of the adapter, not of the core)


def stack_of(framework: str, server: str | None = None) -> str:
    """`framework@server` for an ASGI framework (uvicorn unless said), the framework's name otherwise;
    raises ValueError for a pair that does not exist."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}; got {framework!r}")
    if framework in SELF_SERVED:
        if server not in (None, framework):
            raise ValueError(f"{framework} serves itself: --server {server} applies to {', '.join(ASGI_SERVERS)} frameworks only")
        return framework
    server = server or ASGI_SERVERS[0]
    if server not in ASGI_SERVERS:
        raise ValueError(f"server must be one of {', '.join(ASGI_SERVERS)}; got {server!r}")
    return f"{framework}@{server}"


def restart_signal(stack: str) -> signal.Signals:
    """What asks a stack's server for a graceful restart of its workers: SIGUSR2 to the master of a
    framework that serves itself (`servers.workers`), SIGHUP to uvicorn's or Granian's."""
    return signal.SIGUSR2 if stack in SELF_SERVED else signal.SIGHUP


def split_stack(stack: str) -> tuple[str, str | None]:
    """(framework, server) of a stack name (server None: the framework serves itself); raises ValueError."""
    framework, _, server = stack.partition("@")
    stack_of(framework, server or None)
    return framework, server or None


def stacks_named(names: list[str], server: str | None = None) -> list[str]:
    """Stack names from a command line: a stack, or an ASGI framework alone for it on `server` (every
    server if None)."""
    out: list[str] = []
    for name in names:
        if name in FRAMEWORKS and name not in SELF_SERVED:
            out += [stack_of(name, s) for s in ASGI_SERVERS if server in (None, s)]
        else:
            out.append(stack_of(*split_stack(name)))
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Variant:
    """How the recommender issues database calls, where it groups, what it caches, which driver it uses."""

    strategy: str = "gather"
    grouping: str = "app"
    cache: str = "none"
    driver: str = "pymongo"

    def __post_init__(self) -> None:
        for name, choices in (("strategy", STRATEGIES), ("grouping", GROUPINGS), ("cache", CACHES), ("driver", DRIVERS)):
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")

    @property
    def needs_redis(self) -> bool:
        return self.cache in ("redis", "two-level", "hot")

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def label(self) -> str:
        return f"{self.strategy}/{self.grouping}/{self.cache}/{self.driver}"
