"""Writes (`POST /events`): the three groupings answer alike before and after writes, a request that
starts after a write's answer reflects it (every variant, and across the workers of one server), and a
bad body is refused whole, with the same JSON on every framework.

On embedded services of their own: writes change the data that other tests read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from reclab.host.processes import ProcessGroup
from reclab.run.server import start_server
from reclab.services.start import Endpoints, start_services
from servers.core.hot_keys import HOT_TTL_S
from servers.core.runtime import Runtime
from servers.core.uris import hidden, passwords, shown
from servers.core.variant import CACHES, FRAMEWORKS, GROUPINGS, Variant
from tests.conftest import TINY_SPEC, open_core
from tests.requests_sample import answers, sample_requests
from workloads.dataset import DATASET_NOW, KINDS, generate
from workloads.spec import load_spec

REQUESTS = sample_requests(str(TINY_SPEC), count=60)
PAIRS = 1000  # write-then-read pairs per variant
LANES = 4  # users served side by side in them
DATASET = generate(load_spec(TINY_SPEC).dataset)
WARM_USERS = [u["_id"] for u in DATASET.collections["users"] if not u["cold"]]
ITEMS = [i["_id"] for i in DATASET.collections["items"]]


@pytest.fixture(scope="module")
def live(process_group: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> Endpoints:
    return start_services(process_group, TINY_SPEC, tmp_path_factory.mktemp("live"), need_redis=True)


def random_events(rng: random.Random, count: int, start_ts: int) -> list[dict[str, object]]:
    return [
        {"user": rng.choice(WARM_USERS), "item": rng.choice(ITEMS), "kind": rng.choice(KINDS), "ts": start_ts + n}
        for n in range(count)
    ]


async def test_the_groupings_answer_alike_before_and_after_writes(live: Endpoints) -> None:
    cores = [await open_core(live, Variant("sequential", grouping, "none", "pymongo")) for grouping in GROUPINGS]
    try:
        before = [await answers(core, REQUESTS) for core in cores]
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
        after = [await answers(core, REQUESTS) for core in cores]
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
    """For each cache: in PAIRS write-then-read pairs, the reads that did not reflect their write (each
    user's pairs one after the other, LANES users at a time side by side, as a server sees them)."""
    stale = {}
    shares = [PAIRS // len(WARM_USERS) + (n < PAIRS % len(WARM_USERS)) for n in range(len(WARM_USERS))]
    for cache in CACHES:
        core = await open_core(services, Variant("gather", grouping, cache, "pymongo"))
        stamps = itertools.count(DATASET_NOW + 10**6 * (1 + CACHES.index(cache)))  # each dislike the newest
        try:
            stale[cache] = sum(await asyncio.gather(*(lane(core, first, shares, stamps) for first in range(LANES))))
        finally:
            await core.close()
    return stale


async def lane(core: Runtime, first: int, shares: list[int], stamps: Iterator[int]) -> int:
    """The pairs of every LANES-th user from `first`, one user after the other."""
    return sum([await user_pairs(core, WARM_USERS[n], shares[n], stamps) for n in range(first, len(WARM_USERS), LANES)])


async def user_pairs(core: Runtime, user: int, pairs: int, stamps: Iterator[int]) -> int:
    """`pairs` times: a dislike of the item the user's answer puts first, then the same request; how many
    of those answers still held the disliked item."""
    missing = 0
    item = top_item(await personal(core, user))
    for _ in range(pairs):
        assert item is not None
        event = {"user": user, "item": item, "kind": "dislike", "ts": next(stamps)}
        assert (await core.api.record_events(orjson.dumps(event))).status == 200
        after = await personal(core, user)
        assert b'"items"' in after, after
        missing += item in [i["id"] for i in orjson.loads(after)["items"]]
        item = top_item(after)
    return missing


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
    for (_, status, error), *alike in zip(BAD_BODIES, *replies.values(), strict=True):
        assert len(set(alike)) == 1, alike
        assert alike[0][0] == status and orjson.loads(alike[0][1])["error"] == error, alike[0]


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


def test_between_separate_instances_a_hot_entry_is_stale_for_at_most_its_time_to_live(
    live: Endpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two servers with `--cache hot` that share no memory: a write through one reaches the other's
    cached activity only when that entry expires. Measured: from the write's answer until the other
    instance's answer reflects it (polled every 20 ms), for users whose entry the other had just read."""
    with ProcessGroup() as group:
        logs = [tmp_path / "writer", tmp_path / "reader"]
        for log_dir in logs:
            log_dir.mkdir()
        writer, reader = (start_server(group, "sanic", Variant("gather", "write", "hot", "pymongo"), live, d) for d in logs)
        url = f"{reader.base_url}/recommend/users/{{}}?service=home/for-you&limit=2"
        stamps = itertools.count(DATASET_NOW + 2 * 10**7)
        stale_for: list[float] = []
        for user in WARM_USERS[:12]:
            item = top_item(get_body(url.format(user)))  # the reader caches the user's activity
            event = {"user": user, "item": item, "kind": "dislike", "ts": next(stamps)}
            assert post(writer.base_url, orjson.dumps(event)) == (200, b'{"accepted":1}')
            answered = time.monotonic()
            while item in [i["id"] for i in orjson.loads(get_body(url.format(user)))["items"]]:
                assert time.monotonic() - answered < 10 * HOT_TTL_S, "the entry never expired"
                time.sleep(0.02)
            stale_for.append(time.monotonic() - answered)
    assert max(stale_for) > 0.1  # the other instance did serve what it read before the write
    with capsys.disabled():
        print(f"\nstaleness between instances: median {sorted(stale_for)[6]:.3f} s, max {max(stale_for):.3f} s "
              f"(time to live {HOT_TTL_S} s)")  # fmt: skip


def test_a_server_gets_its_service_uris_off_its_command_line(live: Endpoints, tmp_path: Path) -> None:
    """The embedded Valkey's password (and any in a URI given to the lab) is in the server's
    environment, which only its owner reads, never on its command line, which anyone can."""
    secrets = passwords([live.mongo_uri, live.redis_url or ""])
    assert secrets  # the embedded Valkey always has one
    with ProcessGroup() as group:
        server = start_server(group, "sanic", Variant("gather", "app", "two-level", "pymongo"), live, tmp_path)
        assert top_item(get_body(f"{server.base_url}/recommend/users/{WARM_USERS[0]}?service=home/for-you")) is not None
        cmdline = Path(f"/proc/{server.child.pid}/cmdline").read_bytes()
        assert not any(secret.encode() in cmdline for secret in secrets)


def test_a_uri_is_shown_without_its_password() -> None:
    uri = "redis://:s3cr%40t@127.0.0.1:6379/0 mongodb://lab:pw@127.0.0.1:27017/?authSource=admin"
    assert shown(uri) == "redis://:***@127.0.0.1:6379/0 mongodb://lab:***@127.0.0.1:27017/?authSource=admin"
    assert hidden("auth failed for s3cr@t", uri) == "auth failed for ***"
    assert shown("mongodb://127.0.0.1:27017/") == "mongodb://127.0.0.1:27017/"
