"""The async MongoDB drivers behind one small interface: PyMongo's AsyncMongoClient, Motor, and the
bare wire protocol as a yardstick (`servers.core.wire`).

Writes (a request's events, the activity documents they update) are acknowledged with the server's write
concern (`--write-concern`: a number of members or "majority"; never 0, an answer must mean stored).

Only this module (and that one) knows which driver is in use. Every call is accounted as one database op (and
the documents it returned: `servers.core.documents`), takes one of the request's fan-out slots, is bounded by
the driver's `timeoutMS` (server selection, pool wait, socket and server time), and any driver error leaves as
`Unavailable`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol

from pymongo.errors import PyMongoError

from servers.core.failures import Unavailable
from servers.core.limits import Limits
from servers.core.stats import count_documents, current, timed

Document = dict[str, Any]
CONNECT_TIMEOUT_MS = 3000
FIRST_BATCH = 10_000  # documents in a read's first reply: one user's events fit in one round trip
Update = tuple[Document, Document]  # (filter, update) of one upsert


def write_concern_of(text: str) -> Document:
    """`--write-concern` as MongoDB's `w`: a positive number of members, or "majority"."""
    if text == "majority":
        return {"w": "majority"}
    if text.isdigit() and int(text) >= 1:
        return {"w": int(text)}
    raise ValueError(f"write concern must be a number of members from 1, or 'majority'; got {text!r}")


class db_call:
    """One database operation of the current request: a fan-out slot, accounting, errors as `Unavailable`.

    A small class rather than an `asynccontextmanager`: it wraps every database call."""

    __slots__ = ("_slot", "_timed")

    def __init__(self) -> None:
        self._slot = current().fanout_slot()
        self._timed = timed("db")

    async def __aenter__(self) -> None:
        await self._slot.__aenter__()
        await self._timed.__aenter__()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        await self._timed.__aexit__()
        await self._slot.__aexit__(kind, error, trace)
        if isinstance(error, PyMongoError | OSError):
            raise Unavailable("mongodb", _describe(error)) from error


def _describe(error: Exception) -> str:
    if getattr(error, "timeout", False) or isinstance(error, TimeoutError):
        return "the database did not answer in time"
    return "the database refused or failed the operation"


def client_options(limits: Limits) -> dict[str, Any]:
    """The same bounds for both drivers: every operation within `db_timeout_ms`, pool wait included."""
    return {
        "maxPoolSize": limits.pool_size,
        "timeoutMS": limits.db_timeout_ms,
        "serverSelectionTimeoutMS": limits.db_timeout_ms,
        "connectTimeoutMS": min(CONNECT_TIMEOUT_MS, limits.db_timeout_ms),
    }


class Database(Protocol):
    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None: ...
    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]: ...
    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]: ...
    async def insert_many(self, collection: str, documents: list[Document]) -> None: ...
    async def upsert_many(self, collection: str, updates: list[Update]) -> None: ...
    async def ping(self) -> None: ...
    def close(self) -> Any: ...


class PyMongoDatabase:
    """PyMongo's native asyncio API (`pymongo.AsyncMongoClient`).

    Reads of many documents (a user's activity, on every request) are sent as the `find` command
    itself through `Database.cursor_command` (a retryable read; further batches in the same session):
    the answer is `find().to_list()`'s, without building a cursor object per call. `find_one` stays
    the collection's: `Database.command` is not a retryable read, and after the database refused
    connections its first call failed where `find_one` recovers."""

    def __init__(self, uri: str, name: str, limits: Limits, write_concern: Document) -> None:
        from pymongo import AsyncMongoClient, WriteConcern

        self._client: Any = AsyncMongoClient(uri, **client_options(limits))
        self._db = self._client.get_database(name, write_concern=WriteConcern(**write_concern))
        self._collections: dict[str, Any] = {}  # made once: PyMongo builds a new object for every db[name]

    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None:
        async with db_call():
            found = await self._collection(collection).find_one(query, projection)
        count_documents(collection, found)
        return found

    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]:
        command = {"find": collection, "filter": query, "batchSize": FIRST_BATCH}
        if projection is not None:
            command["projection"] = projection
        async with db_call():
            cursor = await self._db.cursor_command(command)
            found: list[Document] = await cursor.to_list()
        count_documents(collection, found)
        return found

    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]:
        async with db_call():
            cursor = await self._collection(collection).aggregate(pipeline)
            found: list[Document] = await cursor.to_list()
        count_documents(collection, found)
        return found

    async def insert_many(self, collection: str, documents: list[Document]) -> None:
        async with db_call():
            if len(documents) == 1:  # the common write: without the bulk machinery
                await self._collection(collection).insert_one(documents[0])
            else:
                await self._collection(collection).insert_many(documents, ordered=True)

    async def upsert_many(self, collection: str, updates: list[Update]) -> None:
        from pymongo import UpdateOne

        async with db_call():
            if len(updates) == 1:
                await self._collection(collection).update_one(*updates[0], upsert=True)
            else:
                await self._collection(collection).bulk_write([UpdateOne(q, u, upsert=True) for q, u in updates], ordered=False)

    def _collection(self, name: str) -> Any:
        collection = self._collections.get(name)
        if collection is None:
            collection = self._collections[name] = self._db[name]
        return collection

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def close(self) -> None:
        await self._client.close()


class MotorDatabase:
    """Motor, the async driver of the talk (deprecated since 2025, kept for comparison)."""

    def __init__(self, uri: str, name: str, limits: Limits, write_concern: Document) -> None:
        from motor.motor_asyncio import AsyncIOMotorClient
        from pymongo import WriteConcern

        self._client: Any = AsyncIOMotorClient(uri, **client_options(limits))
        self._db = self._client.get_database(name, write_concern=WriteConcern(**write_concern))

    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None:
        async with db_call():
            found = await self._db[collection].find_one(query, projection)
        count_documents(collection, found)
        return found

    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]:
        async with db_call():
            found: list[Document] = await self._db[collection].find(query, projection).to_list(length=None)
        count_documents(collection, found)
        return found

    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]:
        async with db_call():
            found: list[Document] = await self._db[collection].aggregate(pipeline).to_list(length=None)
        count_documents(collection, found)
        return found

    async def insert_many(self, collection: str, documents: list[Document]) -> None:
        async with db_call():
            if len(documents) == 1:  # the common write: without the bulk machinery
                await self._db[collection].insert_one(documents[0])
            else:
                await self._db[collection].insert_many(documents, ordered=True)

    async def upsert_many(self, collection: str, updates: list[Update]) -> None:
        from pymongo import UpdateOne

        async with db_call():
            if len(updates) == 1:
                await self._db[collection].update_one(*updates[0], upsert=True)
            else:
                await self._db[collection].bulk_write([UpdateOne(q, u, upsert=True) for q, u in updates], ordered=False)

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def close(self) -> None:
        self._client.close()
