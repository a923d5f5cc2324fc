"""The embedded MongoDB-wire server (mongoeco) as its own process, loaded with a generated dataset.

Data goes in through mongoeco's direct Python API (fast; inserting over the wire slows down as a
collection grows), then the wire server listens on 127.0.0.1. When ready it writes a JSON line
with its port, the dataset hash and the load time to the ready file.

It also holds each user's activity document (`servers.core.activity`), built from the dataset's events,
for `--grouping write`. Single-document inserts (a write of one event) skip a scan of the whole
collection the engine makes needlessly (`reclab.services.engine_patch`).

With `--shard I --shards N` it holds only shard I's part of the dataset, split as the spec's
`[shards] partition` says (`servers.core.shards`).

Run: python -m reclab.services.mongo_server --spec SPEC --ready-file F [--port P] [--shard I --shards N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from pathlib import Path

import msgspec
from mongoeco import AsyncMongoClient
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

from reclab.services.engine_patch import skip_needless_id_scan
from servers.core.activity import with_activity
from servers.core.runtime import DB_NAME
from servers.core.shards import Partitioning
from workloads.dataset import INDEXES
from workloads.spec import load_spec
from workloads.world import dataset_for


async def serve(spec_path: Path, ready_file: Path, port: int, shard: int = 0, shards: int = 1) -> None:
    started = time.perf_counter()
    skip_needless_id_scan()
    spec = load_spec(spec_path)
    dataset = dataset_for(spec)
    split = Partitioning(shards, spec.partition)
    client = AsyncMongoClient()
    db = client[DB_NAME]
    for name, docs in with_activity(dataset.collections).items():
        mine = docs if shards == 1 else [doc for doc in docs if split.holds(name, doc, shard)]
        if name == "meta":
            mine = [{**doc, **split.stamp(shard)} for doc in docs]
        if mine:
            await db[name].insert_many(mine)
    for name, fields in INDEXES.items():
        for field_name in fields:
            await db[name].create_index(field_name)
    server = AsyncMongoEcoProxyServer(client=client, host="127.0.0.1", port=port)
    address = await server.start()
    info = {
        "port": address.port,
        "pid": os.getpid(),
        "hash": dataset.content_hash(),
        "counts": dataset.counts(),
        "load_s": round(time.perf_counter() - started, 3),
    }
    partial = ready_file.with_suffix(".part")
    partial.write_bytes(msgspec.json.encode(info))
    partial.replace(ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--shard", type=int, default=0, help="this server's shard (0 .. shards-1)")
    parser.add_argument("--shards", type=int, default=1, help="shards the dataset is spread over (servers.core.shards)")
    args = parser.parse_args()
    asyncio.run(serve(args.spec, args.ready_file, args.port, args.shard, args.shards))


if __name__ == "__main__":
    main()
