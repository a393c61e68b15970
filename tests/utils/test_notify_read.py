"""NotifyRead: waiting for keys without missing a write that races with the read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from soma.utils import NotifyRead, Registrations


class Store:
    """A dict standing in for the database; writes notify like the real writer path."""

    def __init__(self, notify_read: NotifyRead[str, int]) -> None:
        self.data: dict[str, int] = {}
        self.notify_read = notify_read
        self.fetches = 0

    def write(self, key: str, value: int) -> int:
        self.data[key] = value  # readable first ...
        return self.notify_read.notify(key, value)  # ... then notify

    def fetch(self, keys: Sequence[str]) -> list[int | None]:
        self.fetches += 1
        return [self.data.get(k) for k in keys]


async def test_all_present_returns_without_waiting() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    store = Store(nr)
    store.write("a", 1)
    store.write("b", 2)
    assert await asyncio.wait_for(nr.read(["b", "a"], store.fetch), 0.5) == [2, 1]
    assert nr.num_pending() == 0


async def test_write_between_fetch_and_wait_is_not_missed() -> None:
    """The race NotifyRead exists for: the store says "missing", but the write (and its
    notify) land before the reader starts waiting. A check-then-register reader would
    hang; register-then-check sees the value."""
    nr: NotifyRead[str, int] = NotifyRead()

    def racy_fetch(keys: Sequence[str]) -> list[int | None]:
        result: list[int | None] = [None for _ in keys]  # snapshot: nothing there yet
        woken = nr.notify("d", 42)  # the writer commits right after our snapshot
        assert woken == 1, "the reader must already be registered when fetch runs"
        return result

    assert await asyncio.wait_for(nr.read(["d"], racy_fetch), 0.5) == [42]
    assert nr.num_pending() == 0


async def test_async_fetch_is_supported_and_races_too() -> None:
    nr: NotifyRead[str, int] = NotifyRead()

    async def fetch(keys: Sequence[str]) -> list[int | None]:
        await asyncio.sleep(0)
        nr.notify("k", 7)
        return [None for _ in keys]

    assert await asyncio.wait_for(nr.read(["k"], fetch), 0.5) == [7]
    assert nr.num_pending() == 0


async def test_partly_present_keys_wait_for_the_rest_in_order() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    store = Store(nr)
    store.write("a", 1)
    store.write("c", 3)
    reader = asyncio.create_task(nr.read(["a", "b", "c", "d"], store.fetch))
    await asyncio.sleep(0.001)
    assert not reader.done()
    # Only the missing keys still hold registrations: found ones were dropped at once.
    assert nr.num_pending() == 2
    assert nr.num_pending_keys() == 2
    store.write("d", 4)
    await asyncio.sleep(0)
    assert not reader.done()
    store.write("b", 2)
    assert await asyncio.wait_for(reader, 0.5) == [1, 2, 3, 4]
    assert store.fetches == 1
    assert nr.num_pending() == 0


async def test_duplicate_keys() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    store = Store(nr)
    reader = asyncio.create_task(nr.read(["x", "x"], store.fetch))
    await asyncio.sleep(0)
    assert store.write("x", 9) == 2
    assert await asyncio.wait_for(reader, 0.5) == [9, 9]
    assert nr.num_pending() == 0


async def test_concurrent_readers_of_one_key_all_get_the_value() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    store = Store(nr)
    readers = [asyncio.create_task(nr.read(["k"], store.fetch)) for _ in range(20)]
    await asyncio.sleep(0)
    assert nr.num_pending() == 20
    assert nr.num_pending_keys() == 1
    assert store.write("k", 5) == 20
    results = await asyncio.wait_for(asyncio.gather(*readers), 0.5)
    assert results == [[5]] * 20
    assert nr.num_pending() == 0


async def test_cancellation_withdraws_registrations() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    store = Store(nr)
    reader = asyncio.create_task(nr.read(["a", "b", "c"], store.fetch))
    await asyncio.sleep(0)
    assert nr.num_pending() == 3
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert nr.num_pending() == 0
    assert nr.num_pending_keys() == 0
    assert store.write("a", 1) == 0  # nobody is left waiting


async def test_timeout_withdraws_registrations() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    store = Store(nr)
    store.write("a", 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(nr.read(["a", "b"], store.fetch), 0.01)
    assert nr.num_pending() == 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await nr.read(["b"], store.fetch)
    assert nr.num_pending() == 0


async def test_fetch_error_withdraws_registrations() -> None:
    nr: NotifyRead[str, int] = NotifyRead()

    def broken(keys: Sequence[str]) -> list[int | None]:
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        await nr.read(["a"], broken)

    def short(keys: Sequence[str]) -> list[int | None]:
        return []

    with pytest.raises(ValueError, match="0 values for 1 keys"):
        await nr.read(["a"], short)
    assert nr.num_pending() == 0


async def test_cancelling_one_reader_keeps_the_others() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    store = Store(nr)
    victim = asyncio.create_task(nr.read(["k"], store.fetch))
    survivor = asyncio.create_task(nr.read(["k"], store.fetch))
    await asyncio.sleep(0)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert nr.num_pending() == 1
    store.write("k", 3)
    assert await asyncio.wait_for(survivor, 0.5) == [3]
    assert nr.num_pending() == 0


async def test_notify_without_waiters_is_a_noop() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    assert nr.notify("nobody", 1) == 0
    assert nr.num_pending() == 0


async def test_register_one_check_then_wait() -> None:
    """The low-level pattern: register, check your own source, then await."""
    nr: NotifyRead[str, int] = NotifyRead()
    with nr.register_one("k") as reg:
        assert reg.key == "k"
        assert nr.num_pending() == 1
        nr.notify("k", 11)  # lands before we await: still delivered
        assert reg.done()
        assert await reg == 11
        assert await reg == 11  # awaiting again returns the same value
    assert nr.num_pending() == 0


async def test_register_one_context_manager_cleans_up_unresolved() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    with nr.register_one("k"):
        assert nr.num_pending() == 1
    assert nr.num_pending() == 0
    reg = nr.register_one("k")
    reg.cancel()
    reg.cancel()  # idempotent
    assert nr.num_pending() == 0


async def test_awaiting_a_registration_with_timeout_cleans_up() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    reg = nr.register_one("k")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reg, 0.01)
    assert nr.num_pending() == 0


async def test_register_all_awaits_every_key() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    with nr.register_all(["a", "b"]) as regs:
        assert len(regs) == 2
        assert [r.key for r in regs] == ["a", "b"]
        assert regs[1].key == "b"
        waiter = asyncio.create_task(_await_all(regs))
        nr.notify("b", 2)
        await asyncio.sleep(0)
        assert not waiter.done()
        nr.notify("a", 1)
        assert await asyncio.wait_for(waiter, 0.5) == [1, 2]
    assert nr.num_pending() == 0


async def test_register_all_cleanup_on_exit() -> None:
    nr: NotifyRead[str, int] = NotifyRead()
    with nr.register_all(["a", "b", "c"]):
        assert nr.num_pending() == 3
    assert nr.num_pending() == 0


async def _await_all(regs: Registrations[str, int]) -> list[int]:
    return await regs
