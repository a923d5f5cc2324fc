"""The bare wire-protocol driver (`--driver wire`, the yardstick of the driver comparison): plain
addresses only, every batch of a cursor, the same documents as PyMongo, server errors raised as
PyMongo's (so they leave as `Unavailable`), against the real embedded MongoDB-wire server. (Its
answers are in the parity tests, its faults in test_faults.)"""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure

from reclab.services.start import Endpoints
from servers.core.failures import Unavailable
from servers.core.limits import Limits
from servers.core.runtime import DB_NAME, open_database
from servers.core.wire import WireDatabase, address_of


def test_only_one_plain_address_is_taken() -> None:
    assert address_of("mongodb://127.0.0.1:4567/?directConnection=true") == ("127.0.0.1", 4567)
    assert address_of("mongodb://localhost") == ("localhost", 27017)
    for uri, named in [
        ("mongodb://user:secret@127.0.0.1:4567", "plain"),
        ("mongodb://a:1,b:2/?replicaSet=rs", "plain"),
        ("mongodb+srv://cluster.example.net", "plain"),
        ("mongodb://127.0.0.1:4567/?tls=true", "tls"),
    ]:
        with pytest.raises(ValueError, match=named):
            address_of(uri)


async def test_every_batch_of_a_cursor_is_read_and_matches_pymongo(services: Endpoints) -> None:
    wire = WireDatabase(services.mongo_uri, DB_NAME, Limits())
    pymongo = open_database("pymongo", services.mongo_uri, DB_NAME)
    try:
        expected = await pymongo.find("events", {}, {"_id": 0})
        first = await wire._command({"find": "events", "filter": {}, "projection": {"_id": 0}, "batchSize": 7})
        assert first["cursor"]["id"] and len(first["cursor"]["firstBatch"]) == 7  # more to come: getMore
        assert await wire._all("events", first) == expected and len(expected) > 7
        assert await wire.find_one("items", {"_id": 3}) == await pymongo.find_one("items", {"_id": 3})
        assert await wire.find_one("items", {"_id": 10**9}) is None
        await wire.ping()
    finally:
        await wire.close()
        await pymongo.close()


async def test_a_command_the_server_refuses_is_an_operation_failure(services: Endpoints) -> None:
    wire = WireDatabase(services.mongo_uri, DB_NAME, Limits())
    try:
        with pytest.raises(Unavailable) as refused:
            await wire.aggregate("events", [{"$no_such_stage": {}}])
        assert isinstance(refused.value.__cause__, OperationFailure)  # as PyMongo raises it
        assert await wire.find_one("items", {"_id": 3}) is not None  # the connection still serves
    finally:
        await wire.close()
