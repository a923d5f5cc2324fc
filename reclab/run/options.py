"""The blocks of options that several commands take alike, as `reclab.cli` builds them from the
flags its `_add_*_arguments` helpers add: where the services are and which rules the servers serve
(`Connections`), how the servers run besides their framework (`Switches`), and, for a command that runs
one server (`serve`, `flamegraph`), both with the stack and the spec (`OneServer`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reclab.host.processes import ProcessGroup
from reclab.results.config import RunConfig
from reclab.services.start import Endpoints, start_services
from servers.core.rules import DEFAULT_RULES
from servers.core.variant import LOOPS, Variant
from workloads.spec import DEFAULT_SPEC


@dataclass(frozen=True)
class Connections:
    """`--mongo-uri`, `--redis-url` (None: the lab starts the service, embedded) and `--rules`."""

    mongo_uri: str | None = None
    redis_url: str | None = None
    rules: Path = DEFAULT_RULES

    def start_services(self, group: ProcessGroup, spec: Path, log_dir: Path, *, need_redis: bool, shards: int = 1) -> Endpoints:
        """The services, started in `group` with the spec's dataset, or reached at their URIs."""
        return start_services(group, spec, log_dir, mongo_uri=self.mongo_uri, redis_url=self.redis_url, need_redis=need_redis,
                              shards=shards)  # fmt: skip


@dataclass(frozen=True)
class Switches:
    """`--loop` and the core's variant (`--strategy`, `--grouping`, `--cache`, `--driver`): how every
    server of a command runs, whatever its framework."""

    loop: str = LOOPS[0]
    variant: Variant = field(default_factory=Variant)

    def config(self, stack: str) -> RunConfig:
        """The configuration of a run of these switches on `stack` (`sanic`, `fastapi@granian`)."""
        return RunConfig.of(stack, self.variant, self.loop)


@dataclass(frozen=True, kw_only=True)
class OneServer:
    """What a command that runs one server is given: its stack, its switches, the services and the spec."""

    framework: str  # a stack name: `sanic`, `fastapi@granian`
    switches: Switches
    connections: Connections = field(default_factory=Connections)
    spec: Path = DEFAULT_SPEC
