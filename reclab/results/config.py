"""One run's configuration: the server variant (framework x switches) and the emulated network delay."""

from __future__ import annotations

from typing import Any

import msgspec

from servers.core.variant import FRAMEWORKS, Variant

FACTORS = ("framework", "strategy", "grouping", "cache", "driver", "delay_ms")


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What a run serves with: framework, the core's switches, and delay to the services (ms)."""

    framework: str = "sanic"
    strategy: str = "gather"
    grouping: str = "app"
    cache: str = "none"
    driver: str = "pymongo"
    delay_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {', '.join(FRAMEWORKS)}; got {self.framework!r}")
        Variant(self.strategy, self.grouping, self.cache, self.driver)  # validates the switches

    @classmethod
    def of(cls, framework: str, variant: Variant, delay_ms: float = 0.0) -> RunConfig:
        return cls(framework=framework, **variant.as_dict(), delay_ms=float(delay_ms))

    @property
    def variant(self) -> Variant:
        return Variant(self.strategy, self.grouping, self.cache, self.driver)

    @property
    def key(self) -> str:
        return f"{self.framework}/{self.variant.label()}/delay={self.delay_ms:g}ms"

    def as_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)

    def level(self, factor: str) -> Any:
        return getattr(self, factor)

    def with_factor(self, factor: str, value: Any) -> RunConfig:
        if factor not in FACTORS:
            raise ValueError(f"unknown factor {factor!r} (known: {', '.join(FACTORS)})")
        return msgspec.structs.replace(self, **{factor: float(value) if factor == "delay_ms" else value})

    def differing_factors(self, other: RunConfig) -> list[str]:
        return [name for name in FACTORS if self.level(name) != other.level(name)]


def key_slug(key: str) -> str:
    """A run key as a file name (flamegraphs are named after the variant they record)."""
    return key.replace("/", "_").replace("=", "-")
