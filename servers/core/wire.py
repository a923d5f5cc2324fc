"""`--driver wire`: the bare MongoDB wire protocol, as the yardstick of the driver comparison.

Each call is one `OP_MSG` exchange (the `find`, `aggregate` or `ping` command, then `getMore` while
a cursor is open) on a pooled asyncio stream: none of a full driver's work per operation (server
selection, sessions, retry bookkeeping, the extra tasks of PyMongo's asyncio layer). It answers
what a read costs at the least, so the lab can say how much of a request's CPU is the driver's.

It is not a driver to ship: it speaks to one server at a plain `mongodb://host:port` address, with
no authentication, TLS, replica sets, sessions or retried reads. Bounds are those of the other
drivers: every call within `db_timeout_ms` (pool wait included), at most `pool_size` connections;
a connection whose exchange failed or was cut short is closed, never reused, and a network error
closes the idle ones too (as PyMongo clears its pool).
"""

from __future__ import annotations

import asyncio
import struct
from urllib.parse import parse_qs, urlsplit

import bson
from pymongo.errors import AutoReconnect, OperationFailure, ProtocolError

from servers.core.drivers import FIRST_BATCH, Document, Update, db_call
from servers.core.limits import Limits
from servers.core.stats import count_documents

OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # length, request id, response to, opcode
MAX_MESSAGE_BYTES = 48 * 1024 * 1024
PLAIN_OPTIONS = {"directConnection", "appName"}  # URI options that change nothing for one plain server


def address_of(uri: str) -> tuple[str, int]:
    """Host and port of a plain `mongodb://host[:port]` URI; a ValueError names what is not plain."""
    parts = urlsplit(uri)
    if parts.scheme != "mongodb" or "," in parts.netloc or "@" in parts.netloc or not parts.hostname:
        raise ValueError(f"the wire driver takes one plain mongodb://host:port address, not {uri!r}")
    options = set(parse_qs(parts.query)) - PLAIN_OPTIONS
    if options:
        raise ValueError(f"the wire driver has no support for the URI options {', '.join(sorted(options))}")
    return parts.hostname, parts.port or 27017


def check_write(reply: Document) -> None:
    """A write's reply that says ok but reports a failed document or write concern is a failure."""
    failure = (reply.get("writeErrors") or [None])[0] or reply.get("writeConcernError")
    if failure is not None:
        raise OperationFailure(str(failure.get("errmsg", "write failed")), failure.get("code"), reply)


class WireConnection:
    """One socket: a command out as OP_MSG, its reply back (one exchange at a time)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._request_id = 0

    async def exchange(self, command: Document) -> Document:
        self._request_id += 1
        body = b"\x00\x00\x00\x00\x00" + bson.encode(command)  # flag bits, then one section of kind 0
        self._writer.write(HEADER.pack(HEADER.size + len(body), self._request_id, 0, OP_MSG) + body)
        length, _, response_to, opcode = HEADER.unpack(await self._read(HEADER.size))
        if opcode != OP_MSG or response_to != self._request_id or not HEADER.size + 5 < length <= MAX_MESSAGE_BYTES:
            raise ProtocolError(f"unexpected reply (opcode {opcode}, to {response_to}, {length} bytes)")
        message = await self._read(length - HEADER.size)
        if message[4] != 0:
            raise ProtocolError(f"unexpected reply section of kind {message[4]}")
        checksum = 4 if message[0] & 1 else 0  # flag bit 0: a CRC-32C follows the sections
        return bson.decode(message[5 : len(message) - checksum])

    async def _read(self, size: int) -> bytes:
        try:
            return await self._reader.readexactly(size)
        except asyncio.IncompleteReadError as closed:  # an EOFError: as PyMongo does, a connection error
            raise AutoReconnect("the server closed the connection") from closed

    def usable(self) -> bool:
        """Not closed by either side (a server that closed it while idle has left it at EOF)."""
        return not self._writer.is_closing() and not self._reader.at_eof()

    def close(self) -> None:
        self._writer.close()


class WireDatabase:
    def __init__(self, uri: str, name: str, limits: Limits, write_concern: Document | None = None) -> None:
        self._host, self._port = address_of(uri)
        self._write_concern = write_concern or {"w": 1}
        self._name = name
        self._timeout_s = limits.db_timeout_ms / 1000
        self._slots = asyncio.Semaphore(limits.pool_size)  # bound to the loop on first use
        self._idle: list[WireConnection] = []

    async def find_one(self, collection: str, query: Document, projection: Document | None = None) -> Document | None:
        command = {"find": collection, "filter": query, "limit": 1, "singleBatch": True}
        if projection is not None:
            command["projection"] = projection
        async with db_call():
            reply = await self._command(command)
        batch = reply["cursor"]["firstBatch"]
        found = batch[0] if batch else None
        count_documents(collection, found)
        return found

    async def find(self, collection: str, query: Document, projection: Document | None = None) -> list[Document]:
        command: Document = {"find": collection, "filter": query, "batchSize": FIRST_BATCH}
        if projection is not None:
            command["projection"] = projection
        async with db_call():
            found = await self._all(collection, await self._command(command))
        count_documents(collection, found)
        return found

    async def aggregate(self, collection: str, pipeline: list[Document]) -> list[Document]:
        async with db_call():
            reply = await self._command({"aggregate": collection, "pipeline": pipeline, "cursor": {"batchSize": FIRST_BATCH}})
            found = await self._all(collection, reply)
        count_documents(collection, found)
        return found

    async def insert_many(self, collection: str, documents: list[Document]) -> None:
        for document in documents:
            document.setdefault("_id", bson.ObjectId())  # as the drivers do: the id is the client's
        command = {"insert": collection, "documents": documents, "ordered": True, "writeConcern": self._write_concern}
        async with db_call():
            check_write(await self._command(command))

    async def upsert_many(self, collection: str, updates: list[Update]) -> None:
        statements = [{"q": q, "u": u, "upsert": True} for q, u in updates]
        command = {"update": collection, "updates": statements, "ordered": False, "writeConcern": self._write_concern}
        async with db_call():
            check_write(await self._command(command))

    async def ping(self) -> None:
        await self._command({"ping": 1}, database="admin")

    async def close(self) -> None:
        self._clear()

    async def _all(self, collection: str, reply: Document) -> list[Document]:
        """The first batch of a cursor's reply, and the rest (getMore) while the cursor is open."""
        cursor = reply["cursor"]
        documents: list[Document] = list(cursor["firstBatch"])
        while cursor["id"]:
            reply = await self._command({"getMore": cursor["id"], "collection": collection, "batchSize": FIRST_BATCH})
            cursor = reply["cursor"]
            documents += cursor["nextBatch"]
        return documents

    async def _command(self, command: Document, database: str | None = None) -> Document:
        command["$db"] = database or self._name
        async with asyncio.timeout(self._timeout_s), self._slots:
            connection = await self._checkout()
            try:
                reply = await connection.exchange(command)
            except (OSError, AutoReconnect, ProtocolError):
                connection.close()
                self._clear()  # as PyMongo clears its pool: the others may be cut off as well
                raise
            except BaseException:
                connection.close()  # its next bytes are unknown: never reused
                raise
            self._idle.append(connection)
        if reply.get("ok") != 1:
            raise OperationFailure(str(reply.get("errmsg", "command failed")), reply.get("code"), reply)
        return reply

    async def _checkout(self) -> WireConnection:
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                return connection
            connection.close()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return WireConnection(reader, writer)

    def _clear(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
