"""The two async MongoDB drivers behind one small interface: PyMongo's AsyncMongoClient and Motor.

Only this module knows which driver is in use; every call is accounted as one database op.
"""

from __future__ import annotations

from typing import Any, Protocol

from servers.core.stats import timed

Document = dict[str, Any]
CONNECT_TIMEOUT_MS = 3000


class Database(Protocol):
    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None: ...
    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]: ...
    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]: ...
    async def ping(self) -> None: ...
    def close(self) -> Any: ...


class PyMongoDatabase:
    """PyMongo's native asyncio API (`pymongo.AsyncMongoClient`)."""

    def __init__(self, uri: str, name: str, pool_size: int) -> None:
        from pymongo import AsyncMongoClient

        self._client: Any = AsyncMongoClient(
            uri,
            maxPoolSize=pool_size,
            serverSelectionTimeoutMS=CONNECT_TIMEOUT_MS,
            connectTimeoutMS=CONNECT_TIMEOUT_MS,
        )
        self._db = self._client[name]

    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None:
        async with timed("db"):
            return await self._db[collection].find_one(query, projection)

    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]:
        async with timed("db"):
            return await self._db[collection].find(query, projection).to_list()

    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]:
        async with timed("db"):
            cursor = await self._db[collection].aggregate(pipeline)
            return await cursor.to_list()

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def close(self) -> None:
        await self._client.close()


class MotorDatabase:
    """Motor, the async driver of the talk (deprecated since 2025, kept for comparison)."""

    def __init__(self, uri: str, name: str, pool_size: int) -> None:
        from motor.motor_asyncio import AsyncIOMotorClient

        self._client: Any = AsyncIOMotorClient(
            uri,
            maxPoolSize=pool_size,
            serverSelectionTimeoutMS=CONNECT_TIMEOUT_MS,
            connectTimeoutMS=CONNECT_TIMEOUT_MS,
        )
        self._db = self._client[name]

    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None:
        async with timed("db"):
            return await self._db[collection].find_one(query, projection)

    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]:
        async with timed("db"):
            return await self._db[collection].find(query, projection).to_list(length=None)

    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]:
        async with timed("db"):
            return await self._db[collection].aggregate(pipeline).to_list(length=None)

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def close(self) -> None:
        self._client.close()


def open_database(driver: str, uri: str, name: str, pool_size: int = 100) -> Database:
    if driver == "pymongo":
        return PyMongoDatabase(uri, name, pool_size)
    if driver == "motor":
        return MotorDatabase(uri, name, pool_size)
    raise ValueError(f"unknown driver {driver!r}")
