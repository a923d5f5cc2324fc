"""The `strategy` switch's gather: results in order, calls in flight together, a failure or a
cancelled caller stops every call, and calls answered from memory finish at once (eager start)."""

from __future__ import annotations

import asyncio

import pytest

from servers.core.calls import run_all


async def test_gather_returns_results_in_call_order_with_the_waits_overlapping() -> None:
    started: list[str] = []

    async def call(name: str, wait_s: float) -> str:
        started.append(name)
        await asyncio.sleep(wait_s)
        started.append(f"{name} done")
        return name

    results = await run_all("gather", [lambda: call("a", 0.02), lambda: call("b", 0.0), lambda: call("c", 0.01)])
    assert results == ["a", "b", "c"]
    assert started[:3] == ["a", "b", "c"]  # all three were waiting before any finished


async def test_sequential_runs_one_call_after_another() -> None:
    order: list[str] = []

    async def call(name: str) -> str:
        order.append(name)
        await asyncio.sleep(0)
        order.append(f"{name} done")
        return name

    assert await run_all("sequential", [lambda: call("a"), lambda: call("b")]) == ["a", "b"]
    assert order == ["a", "a done", "b", "b done"]


async def test_a_failure_cancels_the_other_calls_and_is_raised() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def failing() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await run_all("gather", [slow, failing, slow])
    assert cancelled.is_set()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_an_immediate_failure_is_raised_and_nothing_is_left_running() -> None:
    async def failing() -> None:
        raise KeyError("at once")

    async def slow() -> None:
        await asyncio.sleep(30)

    with pytest.raises(KeyError):
        await run_all("gather", [failing, slow])
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_cancelled_caller_cancels_every_call() -> None:
    stopped: list[str] = []

    async def slow(name: str) -> None:
        try:
            await asyncio.sleep(30)
        finally:
            stopped.append(name)

    caller = asyncio.create_task(run_all("gather", [lambda: slow("a"), lambda: slow("b")]))
    await asyncio.sleep(0.01)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert sorted(stopped) == ["a", "b"]


async def test_calls_answered_from_memory_finish_without_waiting_on_the_loop() -> None:
    async def from_memory(value: int) -> int:
        return value

    loop_turns = 0

    async def count_turns() -> None:
        nonlocal loop_turns
        while True:
            await asyncio.sleep(0)
            loop_turns += 1

    counter = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    before = loop_turns
    assert await run_all("gather", [lambda: from_memory(1), lambda: from_memory(2)]) == [1, 2]
    assert loop_turns == before  # no call needed a turn of the event loop
    counter.cancel()
