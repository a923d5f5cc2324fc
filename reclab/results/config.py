"""One run's configuration: the server variant (framework, event loop, the core's switches, its worker
processes, how its rules' price cap and boost run, its admission control), the emulated network delay to the services, and
the fault injected during the run."""

from __future__ import annotations

from typing import Any

import msgspec

from servers.core.admission import ADMISSIONS
from servers.core.rules import RULE_FORMS
from servers.core.variant import LOOPS, Variant, split_stack, stack_of

FACTORS = ("framework", "loop", "strategy", "grouping", "cache", "driver", "delay_ms", "workers", "rules", "admission")


class RunConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What a run serves with. `delay_ms` None: the server talks to the services directly; a number
    (0 included): through the delay proxy, which holds every exchange that long."""

    framework: str = "sanic"
    server: str | None = None  # the ASGI server an ASGI framework runs on (None: the framework serves itself)
    loop: str = "uvloop"
    strategy: str = "gather"
    grouping: str = "app"
    cache: str = "none"
    driver: str = "pymongo"
    delay_ms: float | None = None
    fault: str | None = None  # the fault injected during the run (the fault matrix), if any
    workers: int = 1  # the server's worker processes on its one socket
    rules: str = "declarative"  # code: the rules' max_price and boost run as rule code (servers.core.rules)
    admission: str = "none"  # the server's admission control (servers.core.admission); older records: none

    def __post_init__(self) -> None:
        if stack_of(self.framework, self.server) != self.stack:
            raise ValueError(f"framework {self.framework} needs a server: one of uvicorn, granian")
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {', '.join(LOOPS)}; got {self.loop!r}")
        if self.rules not in RULE_FORMS:
            raise ValueError(f"rules must be one of {', '.join(RULE_FORMS)}; got {self.rules!r}")
        if self.admission not in ADMISSIONS:
            raise ValueError(f"admission must be one of {', '.join(ADMISSIONS)}; got {self.admission!r}")
        Variant(self.strategy, self.grouping, self.cache, self.driver)  # validates the switches

    @property
    def stack(self) -> str:
        """The framework and the server it runs on: `sanic`, `fastapi@granian` (the framework factor's level)."""
        return self.framework if self.server is None else f"{self.framework}@{self.server}"

    @classmethod
    def of(cls, framework: str, variant: Variant, loop: str = "uvloop", delay_ms: float | None = None) -> RunConfig:
        """`framework`: a stack name (`sanic`, `fastapi@uvicorn`; an ASGI framework alone runs on uvicorn)."""
        framework, server = split_stack(stack_of(*split_stack(framework)))
        return cls(
            framework=framework,
            server=server,
            loop=loop,
            strategy=variant.strategy,
            grouping=variant.grouping,
            cache=variant.cache,
            driver=variant.driver,
            delay_ms=delay_ms,
        )

    @property
    def variant(self) -> Variant:
        return Variant(self.strategy, self.grouping, self.cache, self.driver)

    @property
    def key(self) -> str:
        delay = "" if self.delay_ms is None else f"/delay={self.delay_ms:g}ms"
        fault = "" if self.fault is None else f"/fault={self.fault}"
        workers = "" if self.workers == 1 else f"/workers={self.workers}"
        rules = "" if self.rules == "declarative" else f"/rules={self.rules}"
        admission = "" if self.admission == "none" else f"/admission={self.admission}"
        return f"{self.stack}+{self.loop}/{self.variant.label()}{workers}{rules}{admission}{delay}{fault}"

    def as_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)

    def level(self, factor: str) -> Any:
        return self.stack if factor == "framework" else getattr(self, factor)

    def with_factor(self, factor: str, value: Any) -> RunConfig:
        """This configuration with one factor changed (`framework`: a stack name, `fastapi@granian`)."""
        if factor not in FACTORS:
            raise ValueError(f"unknown factor {factor!r} (known: {', '.join(FACTORS)})")
        if factor == "framework":
            framework, server = split_stack(stack_of(*split_stack(value)))
            return msgspec.structs.replace(self, framework=framework, server=server)
        if factor == "delay_ms" and value is not None:
            value = float(value)
        return msgspec.structs.replace(self, **{factor: value})

    def differing_factors(self, other: RunConfig) -> list[str]:
        return [name for name in FACTORS if self.level(name) != other.level(name)]


def key_slug(key: str) -> str:
    """A run key as a file name (flamegraphs are named after the variant they record)."""
    return key.replace("/", "_").replace("=", "-").replace("+", "-").replace("@", "-")
