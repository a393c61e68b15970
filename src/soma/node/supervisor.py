"""Keeping a local network's nodes up: `soma start` restarts a node that died.

A validator or the fullnode that exits while the network runs (a crash, an OOM kill, a
`kill -9` by hand) is started again on its own store after a pause that doubles with
each quick failure (1 s up to 30 s) and is reset once the node has stayed up for a
minute. Each exit and each failed start is one log line naming the node, its exit
status or this start's own cause, and its log file. Only a signal to `soma start` (Ctrl-C)
stops the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from soma.types.error import SomaError

if TYPE_CHECKING:
    from soma.node.start import LocalNetworkRunner

logger = logging.getLogger(__name__)

MIN_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
#: Up this long, a node's next failure starts the backoff afresh.
STABLE_AFTER_S = 60.0
CHECK_INTERVAL_S = 0.5


class Supervisor:
    def __init__(self, runner: LocalNetworkRunner) -> None:
        self._runner = runner
        now = time.monotonic()
        self._started_at = dict.fromkeys(runner.processes, now)
        self._backoff: dict[str, float] = {}
        self._restarting: dict[str, asyncio.Task[None]] = {}
        #: How many times each node was restarted.
        self.restarts: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Restart dead nodes until `stop` is set."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CHECK_INTERVAL_S):
                        await stop.wait()
                if not stop.is_set():
                    self._check()
        finally:
            tasks = list(self._restarting.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _check(self) -> None:
        for name in self._runner.dead():
            task = self._restarting.get(name)
            if task is not None and not task.done():
                continue
            status = self._runner.processes[name].returncode
            up_for = time.monotonic() - self._started_at.get(name, 0.0)
            delay = self._next_delay(name, up_for)
            logger.error(
                "%s exited (status %s) after %.0f s up; restarting it in %.0f s (log: %s)",
                name,
                status,
                up_for,
                delay,
                self._runner.log_path(name),
            )
            self._restarting[name] = asyncio.get_running_loop().create_task(
                self._restart(name, delay), name=f"restart-{name}"
            )

    def _next_delay(self, name: str, up_for: float) -> float:
        previous = self._backoff.get(name)
        if previous is None or up_for >= STABLE_AFTER_S:
            delay = MIN_BACKOFF_S
        else:
            delay = min(previous * 2, MAX_BACKOFF_S)
        self._backoff[name] = delay
        return delay

    async def _restart(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        try:
            await self._runner.restart(name)
        except SomaError as e:
            # This start's own cause; the node is dead (or was killed) and the next check
            # tries again after a longer pause.
            logger.error("%s", e.message)
            self._started_at[name] = time.monotonic()
            return
        self._started_at[name] = time.monotonic()
        logger.warning("%s restarted", name)
