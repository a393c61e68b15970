"""wait_event: a set event, a timeout, and a cancellation that is never lost."""

from __future__ import annotations

import asyncio

import pytest

from soma.utils.wait import wait_event


async def test_returns_true_when_the_event_is_set() -> None:
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, event.set)
    assert await wait_event(event, 5.0)


async def test_returns_false_on_timeout() -> None:
    assert not await wait_event(asyncio.Event(), 0.01)


async def test_cancel_in_the_iteration_the_event_is_set_still_cancels() -> None:
    """The case `asyncio.wait_for` gets wrong on 3.11: the inner wait completes and the
    outer task is cancelled together. The cancellation must win, or a loop built on it
    can never be stopped."""
    for _ in range(50):
        event = asyncio.Event()
        task = asyncio.get_running_loop().create_task(wait_event(event, 10.0))
        await asyncio.sleep(0)  # the task is now waiting on the event
        event.set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_waiting_loop_stops_when_cancelled() -> None:
    event = asyncio.Event()
    rounds = 0

    async def loop_forever() -> None:
        nonlocal rounds
        while True:
            await wait_event(event, 0.001)
            event.clear()
            rounds += 1

    task = asyncio.get_running_loop().create_task(loop_forever())
    for _ in range(20):
        await asyncio.sleep(0.001)
        event.set()
        task.cancel()
        await asyncio.sleep(0)
        if task.done():
            break
    assert task.cancelled()
