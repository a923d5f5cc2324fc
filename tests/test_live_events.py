"""Writes (`POST /events`): the three groupings answer alike before and after writes, a request that
starts after a write's answer reflects it (every variant, and across the workers of one server), and a
bad body is refused whole, with the same JSON on every framework.

On embedded services of their own: writes change the data that other tests read.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from reclab.host.processes import ProcessGroup
from reclab.run.server import start_server
from reclab.services.start import Endpoints, start_services
from servers.core.runtime import Runtime
from servers.core.variant import CACHES, FRAMEWORKS, GROUPINGS, Variant
from tests.conftest import TINY_SPEC, open_core
from tests.requests_sample import sample_requests
from workloads.dataset import DATASET_NOW, KINDS, generate
from workloads.spec import load_spec

REQUESTS = sample_requests(str(TINY_SPEC), count=60)
PAIRS = 1000  # write-then-read pairs per variant
DATASET = generate(load_spec(TINY_SPEC).dataset)
WARM_USERS = [u["_id"] for u in DATASET.collections["users"] if not u["cold"]]
ITEMS = [i["_id"] for i in DATASET.collections["items"]]


@pytest.fixture(scope="module")
def live(process_group: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Endpoints:
    return start_services(process_group, TINY_SPEC, tmp_path_factory.mktemp("live"), need_redis=True)


async def answers(runtime: Runtime) -> list[tuple[int, bytes]]:
    out = []
    for route, raw_id, query in REQUESTS:
        handler = runtime.api.recommend_items if route == "items" else runtime.api.recommend_users
        reply = await handler(raw_id, query)
        out.append((reply.status, reply.body))
    return out


def random_events(rng: random.Random, count: int, start_ts: int) -> list[dict[str, object]]:
    return [
        {"user": rng.choice(WARM_USERS), "item": rng.choice(ITEMS), "kind": rng.choice(KINDS), "ts": start_ts + n}
        for n in range(count)
    ]


async def test_the_groupings_answer_alike_before_and_after_writes(live: Endpoints) -> None:
    cores = [await open_core(live, Variant("sequential", grouping, "none", "pymongo")) for grouping in GROUPINGS]
    try:
        before = [await answers(core) for core in cores]
        assert before[0] == before[1] == before[2]
        rng = random.Random(5)
        events = random_events(rng, 400, DATASET_NOW + 1)
        written = cores[GROUPINGS.index("write")]  # the writer keeps the activity documents too
        start = 0
        while start < len(events):
            size = rng.choice([1, 1, 1, 3, 20, 100])
            reply = await written.api.record_events(orjson.dumps(events[start : start + size]))
            assert (reply.status, orjson.loads(reply.body)) == (200, {"accepted": len(events[start : start + size])})
            start += size
        after = [await answers(core) for core in cores]
        assert after[0] == after[1] == after[2]
        assert sum(a != b for a, b in zip(before[0], after[0], strict=True)) >= 10  # the writes changed answers
    finally:
        for core in cores:
            await core.close()


def top_item(body: bytes) -> int | None:
    items = orjson.loads(body)["items"]
    return items[0]["id"] if items else None


@pytest.mark.parametrize("grouping", GROUPINGS)
async def test_a_read_after_a_write_reflects_it_on_every_variant(live: Endpoints, grouping: str, tmp_path: Path) -> None:
    """Each pair: a dislike of the item the user's answer puts first, then the same request, which must
    not hold that item any more (the newest dislike is always among the ones a rule removes). A database
    of its own per grouping: only `grouping=write` keeps the activity documents up to date."""
    with ProcessGroup() as group:
        own = start_services(group, TINY_SPEC, tmp_path, need_redis=False)
        stale = await stale_reads(dataclasses.replace(live, mongo_uri=own.mongo_uri), grouping)
    assert stale == dict.fromkeys(CACHES, 0)


async def stale_reads(services: Endpoints, grouping: str) -> dict[str, int]:
    """For each cache: in PAIRS write-then-read pairs, the reads that did not reflect their write."""
    stale = {}
    for cache in CACHES:
        core = await open_core(services, Variant("gather", grouping, cache, "pymongo"))
        stamps = itertools.count(DATASET_NOW + 10**6 * (1 + CACHES.index(cache)))  # each dislike the newest
        try:
            first = {user: top_item(await personal(core, user)) for user in WARM_USERS}
            missing = 0
            for n in range(PAIRS):
                user = WARM_USERS[n % len(WARM_USERS)]
                item = first[user]
                assert item is not None
                event = {"user": user, "item": item, "kind": "dislike", "ts": next(stamps)}
                assert (await core.api.record_events(orjson.dumps(event))).status == 200
                after = await personal(core, user)
                missing += item in [i["id"] for i in orjson.loads(after)["items"]]
                first[user] = top_item(after)
        finally:
            await core.close()
        stale[cache] = missing
    return stale


async def personal(core: Runtime, user: int) -> bytes:
    return (await core.api.recommend_users(str(user), "service=home/for-you&limit=2")).body


BAD_BODIES = [
    (b"", 400, "invalid_json"),
    (b"{not json", 400, "invalid_json"),
    (b"[]", 400, "invalid_event"),
    (b'"like"', 400, "invalid_event"),
    (b'{"user": 3, "item": 7}', 400, "invalid_event"),
    (b'{"user": 3, "item": 7, "kind": "love"}', 400, "invalid_event"),
    (b'{"user": "3", "item": 7, "kind": "like"}', 400, "invalid_event"),
    (b'{"user": true, "item": 7, "kind": "like"}', 400, "invalid_event"),
    (b'{"user": 3, "item": 7.5, "kind": "like"}', 400, "invalid_event"),
    (b'{"user": -3, "item": 7, "kind": "like"}', 400, "invalid_event"),
    (b'{"user": 3, "item": 7, "kind": "like", "ts": 0}', 400, "invalid_event"),
    (b'{"user": 3, "item": 7, "kind": "like", "ts": 99999999999}', 400, "invalid_event"),
    (b'{"user": 3, "item": 7, "kind": "like", "extra": 1}', 400, "invalid_event"),
    (b'[{"user": 3, "item": 7, "kind": "like"}, {"user": 3, "item": 7, "kind": "nope"}]', 400, "invalid_event"),
    (orjson.dumps([{"user": 3, "item": 7, "kind": "like"}] * 101), 413, "too_many_events"),
    (b'{"user": 999999, "item": 7, "kind": "like"}', 422, "unknown_id"),
    (b'[{"user": 3, "item": 7, "kind": "like"}, {"user": 3, "item": 999999, "kind": "like"}]', 422, "unknown_id"),
    (b'{"user": 3, "item": 7, "kind": "like"}' + b" " * 70_000, 413, "payload_too_large"),
]


def post(base_url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{base_url}/events", data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_body(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


@pytest.mark.slow
def test_every_framework_refuses_a_bad_body_whole_and_alike(live: Endpoints, tmp_path: Path) -> None:
    replies: dict[str, list[tuple[int, bytes]]] = {}
    for framework in FRAMEWORKS:
        with ProcessGroup() as group:
            server = start_server(group, framework, Variant("gather", "write", "none", "pymongo"), live, tmp_path)
            replies[framework] = [post(server.base_url, body) for body, _, _ in BAD_BODIES]
            assert server.get_json("/metrics")["events_written"] == 0
            status, body = post(server.base_url, orjson.dumps({"user": 3, "item": 7, "kind": "view"}))
            assert (status, body) == (200, b'{"accepted":1}')
            assert server.get_json("/metrics")["events_written"] == 1
    for (_, status, error), *answers in zip(BAD_BODIES, *replies.values(), strict=True):
        assert len(set(answers)) == 1, answers
        assert answers[0][0] == status and orjson.loads(answers[0][1])["error"] == error, answers[0]


@pytest.mark.slow
def test_a_read_after_a_write_reflects_it_across_the_workers_of_a_server(live: Endpoints, tmp_path: Path) -> None:
    """`--cache hot` keeps activity in each worker; a write answered by one worker must not leave another
    serving what it read before (each request on a new connection, so the workers share them)."""
    with ProcessGroup() as group:
        server = start_server(group, "sanic", Variant("gather", "write", "hot", "pymongo"), live, tmp_path, workers=2)
        url = f"{server.base_url}/recommend/users/{{}}?service=home/for-you&limit=2"
        first = {user: top_item(get_body(url.format(user))) for user in WARM_USERS}
        stamps = itertools.count(DATASET_NOW + 10**7)
        missing, workers = 0, set()
        for n in range(PAIRS):
            user = WARM_USERS[n % len(WARM_USERS)]
            event = {"user": user, "item": first[user], "kind": "dislike", "ts": next(stamps)}
            assert post(server.base_url, orjson.dumps(event)) == (200, b'{"accepted":1}')
            after = get_body(url.format(user))
            missing += first[user] in [i["id"] for i in orjson.loads(after)["items"]]
            first[user] = top_item(after)
            if n % 50 == 0:
                workers.add(orjson.loads(get_body(f"{server.base_url}/health"))["worker"])
        assert missing == 0
        assert len(workers) == 2  # both workers served
