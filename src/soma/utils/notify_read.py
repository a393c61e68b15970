"""`NotifyRead`: wait until a key has been written, without missing a concurrent write.

The pattern it exists for: "give me the effects of transactions D1..Dn, waiting for the
ones that are not executed yet". A naive version reads the store, then waits for a
notification for the missing keys, and hangs forever when the write (and its `notify`)
lands between the read and the start of the wait. `NotifyRead.read` closes that window
by *registering* a waiter for every key first and only then reading the store: any
write that lands after the registration resolves the waiter, and any write before it is
found by the read.

Writers call `notify(key, value)` after they have made the value readable, so a reader
either sees the value in the store or gets it through its registration.

Registrations must be cleaned up when a reader stops caring (finished, cancelled, timed
out), otherwise a key that is never written would keep its waiters forever. `read` does
that itself; callers of the lower-level `register_one` / `register_all` use the returned
object as a context manager (or call `cancel()`), and awaiting a registration also
cleans it up when the await ends for any reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Hashable, Iterator, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

__all__ = ["FetchFn", "NotifyRead", "Registration", "Registrations"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What `read` asks the store: values for the keys in order, None where the key is
# absent. May be a plain or an async function (e.g. a database read in an executor).
FetchFn = Callable[[Sequence[K]], Sequence[V | None] | Awaitable[Sequence[V | None]]]


class Registration(Generic[K, V]):
    """A pending interest in one key; `await` it to get the value once notified.

    The value is captured from the moment of registration, so a `notify` that happens
    before the `await` is not lost. Awaiting it more than once returns the same value.
    """

    __slots__ = ("_fut", "_key", "_owner")

    def __init__(self, owner: NotifyRead[K, V], key: K, fut: asyncio.Future[V]) -> None:
        self._owner = owner
        self._key = key
        self._fut = fut

    @property
    def key(self) -> K:
        return self._key

    def done(self) -> bool:
        """Whether the key was notified (or the registration cancelled)."""
        return self._fut.done()

    def on_value(self, callback: Callable[[V], None]) -> None:
        """Call `callback(value)` when the key is notified (never if cancelled first):
        for a caller waiting on many keys at once without a task per key."""

        def done(fut: asyncio.Future[V]) -> None:
            if not fut.cancelled():
                callback(fut.result())

        self._fut.add_done_callback(done)

    def cancel(self) -> None:
        """Withdraw the registration; idempotent, and harmless after it resolved."""
        self._owner._unregister(self._key, self._fut)
        self._fut.cancel()

    def __await__(self) -> Generator[Any, None, V]:
        try:
            return (yield from self._fut.__await__())
        finally:
            # Done or not (cancelled, timed out), nobody waits on this one any more.
            self._owner._unregister(self._key, self._fut)

    def __enter__(self) -> Registration[K, V]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()

    def __repr__(self) -> str:
        return f"Registration(key={self._key!r}, done={self._fut.done()})"


class Registrations(Generic[K, V]):
    """Registrations for several keys, in the order the keys were given.

    `await` it for all values (in order); use it as a context manager so every leftover
    registration is withdrawn on the way out.
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[Registration[K, V]]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Registration[K, V]]:
        return iter(self._items)

    def __getitem__(self, index: int) -> Registration[K, V]:
        return self._items[index]

    def cancel(self) -> None:
        for reg in self._items:
            reg.cancel()

    async def _wait_all(self) -> list[V]:
        # Sequential awaits are enough: every registration is already live, so waiting
        # for one never makes us miss another; the total wait is the slowest key.
        try:
            return [await reg for reg in self._items]
        finally:
            self.cancel()

    def __await__(self) -> Generator[Any, None, list[V]]:
        return self._wait_all().__await__()

    def __enter__(self) -> Registrations[K, V]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


class NotifyRead(Generic[K, V]):
    """Tasks wait for keys to be written; writers wake them with the written value.

    `None` is reserved to mean "absent" in `read`'s fetch results, so `V` should not
    include None. Like every asyncio primitive, all methods must run on the event loop's
    thread; registering needs a running loop, notifying does not.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        # key -> waiters (a dict used as an ordered set, so removal is O(1) and waiters
        # wake in registration order).
        self._pending: dict[K, dict[asyncio.Future[V], None]] = {}

    def notify(self, key: K, value: V) -> int:
        """Hand `value` to every task waiting for `key`; return how many were waiting.

        Call it after the value is durably readable by `fetch`, never before: a reader
        that registers after this call must find the value in the store.
        """
        waiters = self._pending.pop(key, None)
        if not waiters:
            return 0
        woken = 0
        for fut in waiters:
            if not fut.done():
                fut.set_result(value)
                woken += 1
        return woken

    def register_one(self, key: K) -> Registration[K, V]:
        """Start listening for `key` now; check the store afterwards, then await this."""
        fut: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, {})[fut] = None
        return Registration(self, key, fut)

    def register_all(self, keys: Sequence[K]) -> Registrations[K, V]:
        """`register_one` for each key (duplicates get their own registration)."""
        return Registrations([self.register_one(k) for k in keys])

    async def read(self, keys: Sequence[K], fetch: FetchFn[K, V]) -> list[V]:
        """Values for `keys`, in order, waiting for the ones `fetch` reports missing.

        `fetch(keys)` returns one entry per key, None meaning absent. Registration
        happens before `fetch` runs, so a write racing with the fetch is never missed.
        Cancel the caller (or wrap it in `asyncio.timeout`) to give up; the
        registrations are withdrawn either way.
        """
        with self.register_all(keys) as regs:
            fetched = fetch(keys)
            values = await fetched if isinstance(fetched, Awaitable) else fetched
            if len(values) != len(keys):
                raise ValueError(f"fetch returned {len(values)} values for {len(keys)} keys")
            for value, reg in zip(values, regs, strict=True):
                if value is not None:
                    reg.cancel()  # found: stop holding a waiter for it right away
            pairs = zip(values, regs, strict=True)
            return [await reg if value is None else value for value, reg in pairs]

    def num_pending(self) -> int:
        """Registrations currently waiting (all keys); 0 when nobody waits (no leak)."""
        return sum(len(w) for w in self._pending.values())

    def num_pending_keys(self) -> int:
        """Distinct keys somebody is waiting for."""
        return len(self._pending)

    def _unregister(self, key: K, fut: asyncio.Future[V]) -> None:
        waiters = self._pending.get(key)
        if waiters is None:
            return
        waiters.pop(fut, None)
        if not waiters:
            del self._pending[key]

    def __repr__(self) -> str:
        return f"NotifyRead(pending={self.num_pending()}, keys={len(self._pending)})"
