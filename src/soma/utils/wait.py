"""Waiting on an event with a timeout, without swallowing a cancellation.

On Python 3.11, `asyncio.wait_for` returns the inner result when the task is cancelled in
the same loop iteration as the inner future completes: the cancellation is lost. A loop
that waits that way (a timer woken by an event) can then never be stopped, and whoever
awaits its cancellation hangs for good. `asyncio.timeout` counts cancellations and does
not have this flaw, so every periodic wait in the node goes through here.
"""

from __future__ import annotations

import asyncio


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `event` is set or `timeout_s` passes; True if it was set.

    A cancellation of the caller always propagates."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
