"""Shared fixtures: real embedded MongoDB (mongoeco wire server) and Valkey, over real sockets.

Everything started here is stopped at the end of the session, and the session fails if any child
process is left behind.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest

from reclab.host.processes import Forker, ProcessGroup
from reclab.services.external import load_into
from reclab.services.start import Endpoints, start_services
from servers.core.limits import Limits
from servers.core.runtime import Runtime, Settings, open_runtime
from servers.core.variant import Variant
from tests.handmade import HANDMADE_DB, handmade_dataset
from workloads.spec import SPECS_DIR

TINY_SPEC = SPECS_DIR / "tiny.toml"
# Deadlines for a machine busy with something else (another benchmark, the other tests): a request the
# starved server or database answers late is answered late, not refused at the default 1 s deadline,
# so that a test can still ask for every request to succeed. Below the generator's 10 s request timeout.
PATIENT = Limits(deadline_ms=8000, db_timeout_ms=8000, cache_timeout_ms=2000)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes() -> Iterator[None]:
    yield
    leftovers = [p for p in psutil.Process().children(recursive=True) if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not leftovers, f"processes left running: {[(p.pid, p.cmdline()[:3]) for p in leftovers]}"


@pytest.fixture(autouse=True)
def own_cores() -> Iterator[None]:
    """A bench pins the lab's own process off the server's core; in a test that process is pytest, so
    each test gets back the cores it started with (else later tests would see a one-core machine)."""
    cores = os.sched_getaffinity(0)
    yield
    os.sched_setaffinity(0, cores)


@pytest.fixture(scope="session")
def process_group() -> Iterator[ProcessGroup]:
    with ProcessGroup() as group:
        yield group


@pytest.fixture(scope="session")
def forker(process_group: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Forker:
    """The pre-imported parent a bench forks its servers from (`servers.zygote`), one per test process: a test
    that starts many servers forks them as a bench does instead of importing their framework each time."""
    return Forker(process_group, tmp_path_factory.mktemp("zygote") / "zygote.log")


@pytest.fixture(scope="session")
def services(process_group: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Endpoints:
    """Embedded MongoDB loaded with the tiny spec, the hand-made dataset beside it, and Valkey."""
    endpoints = start_services(process_group, TINY_SPEC, tmp_path_factory.mktemp("logs"), need_redis=True)
    load_into(endpoints.mongo_uri, handmade_dataset(), db_name=HANDMADE_DB)
    return endpoints


@pytest.fixture
async def handmade(services: Endpoints) -> AsyncIterator[Runtime]:
    """The core over the hand-made dataset, sequential, no cache."""
    runtime = await open_runtime(Settings(mongo_uri=services.mongo_uri, db_name=HANDMADE_DB))
    yield runtime
    await runtime.close()


async def open_core(
    services: Endpoints, variant: Variant, rules: Path | None = None, db_name: str | None = None, rules_as_code: bool = False
) -> Runtime:
    settings = Settings(mongo_uri=services.mongo_uri, redis_url=services.redis_url, variant=variant, rules_as_code=rules_as_code)
    if rules is not None:
        settings = Settings(**{**settings.__dict__, "rules_path": rules})
    if db_name is not None:
        settings = Settings(**{**settings.__dict__, "db_name": db_name})
    return await open_runtime(settings)
