"""`NotifyOnce`: a one-shot signal that any number of tasks can wait for.

The node uses it for facts that become true exactly once and then stay true, such as
"this epoch has ended" or "shutdown was requested": many tasks wait for it, and a task
that starts waiting *after* the fact must not block.

Why not `asyncio.Event`? An Event can be cleared again, which is exactly the bug class a
one-shot signal rules out, and its `set()` cannot tell the caller whether it was the one
that fired (used to run end-of-epoch work once). This class also never holds on to an
event loop: each waiter gets its own future from the loop it runs in, so an instance
can be built at import time or in synchronous setup code and used later inside a loop.
"""

from __future__ import annotations

import asyncio

__all__ = ["NotifyOnce"]


class NotifyOnce:
    """A signal that goes from "not yet" to "notified" once and never back.

    `notify()` must be called from the thread running the event loop of the waiters
    (like every asyncio primitive); it is safe to call before any loop exists.
    """

    __slots__ = ("_notified", "_waiters")

    def __init__(self) -> None:
        self._notified = False
        # One future per waiting task (a dict is an ordered set: waiters wake in FIFO
        # order). Sharing a single future would let one cancelled waiter cancel it for
        # everybody.
        self._waiters: dict[asyncio.Future[None], None] = {}

    @property
    def is_notified(self) -> bool:
        """Whether `notify()` has been called."""
        return self._notified

    def notify(self) -> bool:
        """Fire the signal and wake every waiter.

        Returns True if this call fired it and False if it had already fired, so that
        a caller racing with others can run "first one only" work without a lock.
        """
        if self._notified:
            return False
        self._notified = True
        waiters, self._waiters = self._waiters, {}
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        return True

    async def wait(self) -> None:
        """Return once the signal has fired (immediately if it already has).

        Cancelling a waiter only affects that waiter.
        """
        if self._notified:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[fut] = None
        try:
            await fut
        finally:
            # Normally `notify()` already dropped it; this matters on cancellation.
            self._waiters.pop(fut, None)

    def num_waiters(self) -> int:
        """How many tasks are currently blocked in `wait()` (for tests and metrics)."""
        return len(self._waiters)

    def __repr__(self) -> str:
        return f"NotifyOnce(notified={self._notified}, waiters={len(self._waiters)})"
