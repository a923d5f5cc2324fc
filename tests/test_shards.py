"""Sharded data: the partitionings, each read routed to the shard of its key (against in-process fake
databases that only record what they are asked: a unit test), the same answers from three embedded
MongoDB shards as from one (split either way), with each shard's operations counted, and shards
given out of order refused."""

from __future__ import annotations

from typing import Any

import pytest

from reclab.host.processes import ProcessGroup
from reclab.services.start import Endpoints, start_services
from servers.core.runtime import Runtime, Settings, open_runtime
from servers.core.shards import PARTITION, Partitioning, ShardedDatabase, partitioning_of, shard_uris
from servers.core.tally import Tally
from servers.core.variant import Variant
from tests.conftest import TINY_SPEC
from tests.requests_sample import answers
from tests.test_parity import REQUESTS


class RecordingDatabase:
    """An in-process fake: answers every read with the shard's number, and records the collection."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.asked: list[str] = []

    async def find_one(self, collection: str, query: dict[str, Any], projection: Any = None) -> dict[str, Any] | None:
        self.asked.append(collection)
        return {"shard": self.number}

    async def find(self, collection: str, query: dict[str, Any], projection: Any = None) -> list[dict[str, Any]]:
        self.asked.append(collection)
        return [{"shard": self.number}]

    async def aggregate(self, collection: str, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.asked.append(collection)
        return [{"shard": self.number}]

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def test_a_key_has_one_shard_and_every_document_one_home() -> None:
    modulo, hashed = Partitioning(3), Partitioning(3, "hashed")
    assert [modulo.shard_of(k) for k in (3, 4, 5)] == [0, 1, 2]
    assert [hashed.shard_of(k) for k in range(1, 301)] != [modulo.shard_of(k) for k in range(1, 301)]
    assert {hashed.shard_of(k) for k in range(1, 301)} == {0, 1, 2}
    assert modulo.shard_of("cat-007") == hashed.shard_of("cat-007") and Partitioning(1).shard_of(12345) == 0
    for split in (modulo, hashed):
        for collection, field in PARTITION.items():
            doc = {field: 7}
            assert sum(split.holds(collection, doc, shard) for shard in range(3)) == 1
        assert all(split.holds("meta", {"_id": "dataset"}, shard) for shard in range(3))  # on every shard
    assert shard_uris("mongodb://a:1 mongodb://b:2") == ["mongodb://a:1", "mongodb://b:2"]
    with pytest.raises(ValueError, match="1 to 8"):
        shard_uris(" ".join(f"mongodb://h{i}" for i in range(9)))


def test_the_shards_meta_states_the_split_and_out_of_order_shards_are_refused() -> None:
    split = Partitioning(3, "hashed")
    metas: list[dict[str, Any] | None] = [{"hash": "h", **split.stamp(i)} for i in range(3)]
    where = ["a", "b", "c"]
    assert partitioning_of(metas, where) == split
    assert partitioning_of([{"hash": "h"}], ["a"]) == Partitioning()  # one database, loaded whole
    with pytest.raises(ValueError, match="b holds shard 2/3 of the dataset, but was given as shard 1/3"):
        partitioning_of([metas[0], metas[2], metas[1]], where)
    with pytest.raises(ValueError, match="c holds another dataset or another split than a"):
        partitioning_of([*metas[:2], {"hash": "h", **Partitioning(3).stamp(2)}], where)
    with pytest.raises(ValueError, match="b holds no reclab dataset"):
        partitioning_of([metas[0], None, metas[2]], where)
    with pytest.raises(ValueError, match="a holds shard 0/3"):
        partitioning_of(metas[:1], ["a"])  # one shard of three, given as the whole


async def test_reads_go_to_the_shard_of_their_key_and_are_counted_there() -> None:
    fakes = [RecordingDatabase(i) for i in range(3)]
    tally = Tally()
    db = ShardedDatabase(fakes, tally, Partitioning(3))  # type: ignore[arg-type]
    assert await db.find_one("items", {"_id": 4}) == {"shard": 1}
    assert await db.find("events", {"user": 5}) == [{"shard": 2}]
    assert await db.aggregate("events", [{"$match": {"user": 6}}, {"$group": {}}]) == [{"shard": 0}]
    assert await db.find_one("meta", {"_id": "dataset"}) == {"shard": 0}
    assert await db.find("events", {"kind": "view"}) == [{"shard": 0}, {"shard": 1}, {"shard": 2}]  # no key: every shard
    with pytest.raises(ValueError, match="must match on 'user'"):
        await db.aggregate("events", [{"$match": {"kind": "view"}}])
    assert [f.asked for f in fakes] == [["events", "meta", "events"], ["items", "events"], ["events", "events"]]
    assert [tally.total(f"shard{i}_ops") for i in range(3)] == [3, 2, 2]


@pytest.fixture(scope="module", params=["modulo", "hashed"])
def three_shards(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("shards")
    spec = folder / "tiny.toml"
    spec.write_text(TINY_SPEC.read_text() + f'\n[shards]\npartition = "{request.param}"\n')
    with ProcessGroup() as group:
        yield start_services(group, spec, folder, need_redis=False, shards=3)


@pytest.mark.slow
@pytest.mark.parametrize("variant", [Variant("sequential", "app", "none", "pymongo"), Variant("gather", "db", "local", "motor")])
async def test_three_shards_give_the_same_answers_as_one(services: Endpoints, three_shards: Endpoints, variant: Variant) -> None:
    assert three_shards.shards == 3 and len(three_shards.mongo_uri.split()) == 3
    assert three_shards.dataset_hash == services.dataset_hash
    one: Runtime = await open_runtime(Settings(mongo_uri=services.mongo_uri, variant=variant))
    three: Runtime = await open_runtime(Settings(mongo_uri=three_shards.mongo_uri, variant=variant))
    try:
        assert await answers(three, REQUESTS) == await answers(one, REQUESTS)
        metrics = three.api.metrics.snapshot()
        per_shard = [shard["ops"] for shard in metrics["shards"]]
        assert len(per_shard) == 3 and all(n > 0 for n in per_shard)
        assert sum(per_shard) == metrics["db_ops"]
        assert "shards" not in one.api.metrics.snapshot()
    finally:
        await one.close()
        await three.close()


@pytest.mark.slow
async def test_shards_given_out_of_order_are_refused(three_shards: Endpoints) -> None:
    first, second, third = three_shards.mongo_uri.split()
    with pytest.raises(RuntimeError, match="holds shard 2/3 of the dataset, but was given as shard 1/3"):
        await open_runtime(Settings(mongo_uri=f"{first} {third} {second}"))
    with pytest.raises(RuntimeError, match="holds shard 0/3 of the dataset, but was given as shard 0/1"):
        await open_runtime(Settings(mongo_uri=first))
