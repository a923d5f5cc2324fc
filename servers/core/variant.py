"""The design switches of the talk, as one validated configuration value."""

from __future__ import annotations

from dataclasses import asdict, dataclass

STRATEGIES = ("sequential", "gather")
GROUPINGS = ("db", "app", "write")  # write: a per-user activity document kept up to date by every write
CACHES = ("none", "redis", "local", "two-level", "hot")  # hot: two-level, and hot keys' activity in the instance
DRIVERS = ("pymongo", "motor", "wire")  # wire: the bare protocol, a yardstick (servers.core.wire)
FRAMEWORKS = ("sanic", "tornado", "aiohttp")
LOOPS = ("uvloop", "asyncio")  # the event loop a server runs on (a setting of the adapter, not of the core)


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
