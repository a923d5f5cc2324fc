"""Admission control (servers.core.admission): the gate on its own (places, FIFO, refusals at once,
the wait budget, clients that go away, the adaptive limit), and over HTTP on every framework: a flood
gets 503 `overloaded` with Retry-After and never a 500, /health keeps answering, /metrics adds up."""

from __future__ import annotations

import asyncio
import http.client
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclab.host.processes import ProcessGroup
from reclab.run.server import start_server
from reclab.services.start import Endpoints
from servers.core.admission import BACKOFF, MIN_LIMIT, WINDOW_REQUESTS, AimdLimit, Gate, Overloaded, open_gate
from servers.core.limits import Limits
from servers.core.tally import Tally
from servers.core.variant import SELF_SERVED, Variant
from tests.conftest import PATIENT


def gate(mode: str = "fixed", limit: int = 2, queue: int = 10, wait_ms: int = 200, latency_ms: int = 40) -> Gate:
    limits = Limits(admission_limit=limit, admission_queue=queue, admission_wait_ms=wait_ms, admission_latency_ms=latency_ms)
    return Gate(mode, limits, Tally())


def test_none_opens_no_gate_and_unknown_modes_are_refused() -> None:
    assert open_gate("none", Limits(), Tally()) is None
    with pytest.raises(ValueError, match="admission must be one of"):
        open_gate("lifo", Limits(), Tally())
    with pytest.raises(ValueError, match="admission_wait_ms"):
        Limits(admission_wait_ms=1000)


async def test_places_go_to_waiters_in_arrival_order() -> None:
    g = gate(limit=2)
    assert await g.enter() == 0.0 and await g.enter() == 0.0
    order: list[int] = []

    async def wait(n: int) -> None:
        await g.enter()
        order.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0.01)
    assert order == [] and g.in_progress == 2
    g.leave(0.001)
    await asyncio.sleep(0.01)
    assert order == [0]
    g.leave(0.001)
    g.leave(0.001)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2] and g.in_progress == 2


async def test_a_full_queue_refuses_at_once() -> None:
    g = gate(limit=1, queue=2)
    await g.enter()
    waiters = [asyncio.create_task(g.enter()) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="2 requests already wait"):
        await g.enter()
    for _ in range(3):
        g.leave(0.001)
        await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert g._tally.total("shed") == 1 and g._tally.total("admitted") == 3


async def test_an_expected_wait_beyond_the_budget_is_refused_at_once() -> None:
    g = gate(limit=2, wait_ms=100)
    await g.enter()
    await g.enter()
    g.leave(0.080)  # mean time in progress 80 ms: a waiter expects 40 ms (within half the budget), the next 80 ms
    await g.enter()
    first = asyncio.create_task(g.enter())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(Overloaded, match="expected wait"):
        await g.enter()
    assert loop.time() - began < 0.04  # refused without waiting
    g.leave(0.080)
    await first


async def test_a_waiter_whose_budget_runs_out_is_refused_and_counted_late() -> None:
    g = gate(limit=1, wait_ms=20)
    await g.enter()
    with pytest.raises(Overloaded, match="no place within 40 ms"):  # twice the budget
        await g.enter()
    assert g._tally.total("shed_late") == 1 and g._tally.total("shed") == 1
    assert g.in_progress == 1 and not g._waiting
    g.leave(0.001)
    assert await g.enter() == 0.0  # the place is free again


async def test_a_client_that_goes_away_gives_its_place_to_the_next() -> None:
    g = gate(limit=1)
    await g.enter()
    gone = asyncio.create_task(g.enter())
    stays = asyncio.create_task(g.enter())
    await asyncio.sleep(0)
    g.leave(0.001)  # the place is handed to `gone` ...
    gone.cancel()  # ... which is cancelled before it runs
    await asyncio.sleep(0)
    await asyncio.wait_for(stays, 1)
    assert g.in_progress == 1 and not g._waiting


def test_the_adaptive_limit_backs_off_over_target_and_grows_when_used() -> None:
    clock = [0.0]
    limit = AimdLimit(10, 0.040, lambda: clock[0])
    for _ in range(WINDOW_REQUESTS):
        clock[0] += 0.01
        limit.observe(0.080, reached=True)
    assert limit.value == int(10 * BACKOFF)
    for _ in range(WINDOW_REQUESTS):
        clock[0] += 0.01
        limit.observe(0.010, reached=True)
    assert limit.value == int(10 * BACKOFF) + 1
    for _ in range(WINDOW_REQUESTS):
        clock[0] += 0.01
        limit.observe(0.010, reached=False)  # under target, but the limit was never in use: no growth
    assert limit.value == int(10 * BACKOFF) + 1
    for _ in range(WINDOW_REQUESTS):
        clock[0] += 0.01
        limit.observe(0.080, reached=False)  # over target, but not crowded by the limit: no cut
    assert limit.value == int(10 * BACKOFF) + 1
    for _ in range(100 * WINDOW_REQUESTS):
        clock[0] += 0.01
        limit.observe(1.0, reached=True)
    assert limit.value == MIN_LIMIT  # never below it


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["enter", "leave", "cancel", "tick"]), max_size=60), st.integers(1, 4), st.integers(1, 5))
def test_places_are_never_lost_nor_given_twice(steps: list[str], limit: int, queue: int) -> None:
    """Whatever order requests come, finish and go away in: at most `limit` in progress, a free place
    never left while someone waits, and every request holding a place counted once."""

    async def play() -> None:
        g = gate(limit=limit, queue=queue, wait_ms=900)
        holders: list[asyncio.Task[float]] = []
        for step in steps:
            if step == "enter":
                holders.append(asyncio.create_task(g.enter()))
            elif step == "leave":
                admitted = [t for t in holders if t.done() and not t.cancelled() and t.exception() is None]
                if admitted:
                    holders.remove(admitted[0])
                    g.leave(0.001)
            elif step == "cancel":
                waiting = [t for t in holders if not t.done()]
                if waiting:
                    waiting[-1].cancel()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            holding = sum(1 for t in holders if t.done() and not t.cancelled() and t.exception() is None)
            assert g.in_progress <= limit
            assert g.in_progress >= holding
            assert not (g._waiting and g.in_progress < limit)
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)

    asyncio.run(play())


# Over HTTP: one place and one waiting place per worker, so a burst of concurrent requests must be shed.
TIGHT = replace(PATIENT, admission_limit=1, admission_queue=1, admission_wait_ms=200)
BURST = 48


def burst(port: int, path: str, count: int, health: int = 0) -> list[tuple[int, dict, str | None]]:
    """`count` GETs of `path` and `health` of /health (after them) released at once, each on its own
    connection: (status, JSON, Retry-After) of each, in that order."""
    start = threading.Barrier(count + health)

    def one(index: int) -> tuple[int, dict, str | None]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.connect()
            start.wait()
            connection.request("GET", path if index < count else "/health")
            response = connection.getresponse()
            return response.status, orjson.loads(response.read()), response.getheader("Retry-After")
        finally:
            connection.close()

    with ThreadPoolExecutor(count + health) as pool:
        return list(pool.map(one, range(count + health)))


@pytest.mark.parametrize("framework", [*SELF_SERVED, "starlette@granian"])
@pytest.mark.parametrize("mode", ["fixed", "adaptive"])
def test_a_burst_is_shed_at_once_never_a_500(services: Endpoints, framework: str, mode: str, tmp_path: Path) -> None:
    with ProcessGroup() as group:
        server = start_server(
            group, framework, Variant(cache="none"), services, tmp_path, limits=TIGHT, admission=mode
        )  # fmt: skip
        assert server.get_json("/health")["admission"] == mode
        port = server.port
        answers = burst(port, "/recommend/users/3?service=home/for-you", BURST, health=4)
        assert [(status, body["status"]) for status, body, _ in answers[BURST:]] == [(200, "ok")] * 4  # during the flood
        answers = answers[:BURST]
        statuses = sorted({status for status, _, _ in answers})
        assert set(statuses) <= {200, 503}, statuses
        shed = [(body, retry) for status, body, retry in answers if status == 503]
        assert shed, "a burst of 48 on one place and one waiting place was all admitted"
        assert all(body["error"] == "overloaded" and retry == "1" for body, retry in shed)
        assert server.get_json("/health")["status"] == "ok"
        admission = server.get_json("/metrics")["admission"]
        assert admission["mode"] == mode
        assert admission["admitted"] + admission["shed"] == BURST
        assert admission["shed"] == len(shed) and admission["in_progress"] == 0 and admission["waiting"] == 0


def test_a_bad_request_is_refused_as_such_not_shed(services: Endpoints, tmp_path: Path) -> None:
    with ProcessGroup() as group:
        server = start_server(group, "sanic", Variant(cache="none"), services, tmp_path, limits=TIGHT, admission="fixed")
        answers = burst(server.port, "/recommend/users/nope", 16)
        assert {status for status, _, _ in answers} == {400}
        assert server.get_json("/metrics")["admission"]["admitted"] == 0
