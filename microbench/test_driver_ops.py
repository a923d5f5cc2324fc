"""What one database read costs the server's CPU, by driver: a user's events read through PyMongo
(AsyncMongoClient), Motor, and the bare wire protocol (`servers.core.wire`: the same `find` command
as one OP_MSG exchange, with none of a full driver's work per operation). Timed in process CPU time,
8 reads in flight at a time, against the embedded MongoDB-wire server loaded with the tiny spec.

A warm request of the baseline makes about one such read: the difference between PyMongo and the
bare protocol is the part of a request's CPU that is the driver's own machinery.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
import uvloop

from reclab.host.processes import ProcessGroup
from reclab.services.start import start_services
from servers.core.drivers import Database
from servers.core.limits import Limits
from servers.core.runtime import DB_NAME, open_database
from servers.core.variant import DRIVERS
from workloads.spec import SPECS_DIR

IN_FLIGHT = 8
READS_PER_ROUND = 200
QUERY = {"user": 1}
PROJECTION = {"_id": 0, "item": 1, "kind": 1, "ts": 1}


@pytest.fixture(scope="module")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with ProcessGroup() as group:
        yield start_services(group, SPECS_DIR / "tiny.toml", tmp_path_factory.mktemp("logs"), need_redis=False).mongo_uri


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = uvloop.new_event_loop()
    yield loop
    loop.close()


def reads(loop: asyncio.AbstractEventLoop, db: Database) -> Callable[[], None]:
    """A round: READS_PER_ROUND reads of one user's events, IN_FLIGHT at a time."""

    async def lane() -> None:
        for _ in range(READS_PER_ROUND // IN_FLIGHT):
            assert await db.find("events", QUERY, PROJECTION)

    async def round_() -> None:
        await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))

    return lambda: loop.run_until_complete(round_())


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.benchmark(group="one read of a user's events, 200 per round", timer=time.process_time)
def test_200_reads_of_a_users_events_through_the_driver(benchmark, loop, mongo_uri: str, driver: str) -> None:
    async def opened() -> Database:
        return open_database(driver, mongo_uri, DB_NAME, Limits())

    db = loop.run_until_complete(opened())
    try:
        benchmark.pedantic(reads(loop, db), rounds=15, warmup_rounds=2)
    finally:
        loop.run_until_complete(db.close())  # type: ignore[func-returns-value]
