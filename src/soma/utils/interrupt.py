"""Ctrl-C that waits for a step to finish.

Some steps must not stop halfway: writing a new network's files, deleting an old one.
`deferred_interrupts()` holds SIGINT and SIGTERM back while its block runs and delivers
the first of them (to the handler that was in place) once the block is done, so the
user's Ctrl-C still stops the command, only a moment later and never between two files.
Main thread only (Python runs signal handlers there).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    received: list[int] = []

    def hold(signum: int, _: FrameType | None) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in HELD}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])
