"""A discrete-event scheduler on virtual time.

Events run in (time, insertion order) order, so two events due at the same millisecond
always run in the order they were scheduled: together with seeded randomness, that makes
a whole simulated run a pure function of its seed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable


class Scheduler:
    """Virtual time in integer milliseconds, starting at 0."""

    def __init__(self) -> None:
        self._queue: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self._now = 0
        self.events_run = 0

    @property
    def now_ms(self) -> int:
        return self._now

    def at(self, time_ms: int, action: Callable[[], None]) -> None:
        """Run `action` at `time_ms` (now, if that is in the past)."""
        self._seq += 1
        heapq.heappush(self._queue, (max(time_ms, self._now), self._seq, action))

    def after(self, delay_ms: int, action: Callable[[], None]) -> None:
        self.at(self._now + max(0, delay_ms), action)

    def run(self, until: Callable[[], bool], max_time_ms: int) -> bool:
        """Run events until `until()` holds (checked after each event) or virtual time
        would pass `max_time_ms`; return whether `until()` held."""
        while self._queue:
            if until():
                return True
            time_ms, _, action = self._queue[0]
            if time_ms > max_time_ms:
                break
            heapq.heappop(self._queue)
            self._now = time_ms
            action()
            self.events_run += 1
        return until()
