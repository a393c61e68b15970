"""NotifyOnce: a one-shot signal that early and late waiters both see."""

from __future__ import annotations

import asyncio

import pytest

from soma.utils import NotifyOnce


def test_constructed_outside_a_loop_and_notified_without_one() -> None:
    signal = NotifyOnce()
    assert not signal.is_notified
    assert signal.notify() is True
    assert signal.is_notified
    # Waiting after the fact, inside a loop created later, returns at once.
    asyncio.run(asyncio.wait_for(signal.wait(), 0.5))


def test_usable_across_event_loops() -> None:
    # Nothing binds the instance to the first loop that used it.
    signal = NotifyOnce()

    async def wait_briefly() -> bool:
        try:
            await asyncio.wait_for(signal.wait(), 0.01)
        except TimeoutError:
            return False
        return True

    assert asyncio.run(wait_briefly()) is False
    signal.notify()
    assert asyncio.run(wait_briefly()) is True


async def test_waiter_before_notify_is_woken() -> None:
    signal = NotifyOnce()
    waiter = asyncio.create_task(signal.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert signal.num_waiters() == 1
    signal.notify()
    await asyncio.wait_for(waiter, 0.5)
    assert signal.num_waiters() == 0


async def test_waiter_after_notify_returns_immediately() -> None:
    signal = NotifyOnce()
    signal.notify()
    await asyncio.wait_for(signal.wait(), 0.5)
    await signal.wait()  # and again, any number of times
    assert signal.num_waiters() == 0


async def test_notify_is_idempotent_and_reports_who_fired() -> None:
    signal = NotifyOnce()
    assert signal.notify() is True
    assert signal.notify() is False
    assert signal.notify() is False
    assert signal.is_notified


async def test_many_waiters_all_woken() -> None:
    signal = NotifyOnce()
    waiters = [asyncio.create_task(signal.wait()) for _ in range(100)]
    await asyncio.sleep(0)
    assert signal.num_waiters() == 100
    assert not any(w.done() for w in waiters)
    signal.notify()
    await asyncio.wait_for(asyncio.gather(*waiters), 0.5)
    assert signal.num_waiters() == 0


async def test_cancelled_waiter_does_not_affect_others() -> None:
    signal = NotifyOnce()
    victim = asyncio.create_task(signal.wait())
    survivor = asyncio.create_task(signal.wait())
    await asyncio.sleep(0)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert signal.num_waiters() == 1
    signal.notify()
    await asyncio.wait_for(survivor, 0.5)


async def test_timed_out_waiter_is_removed() -> None:
    signal = NotifyOnce()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await signal.wait()
    assert signal.num_waiters() == 0
    assert not signal.is_notified
