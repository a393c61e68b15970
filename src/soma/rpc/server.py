"""Serving the HTTP API inside a process that handles its own signals.

uvicorn's `Server.serve` replaces the SIGINT/SIGTERM handlers while it runs and raises
the signal again when it stops; inside `soma start` (which stops the validators after
the API, in order) that would cut the shutdown short. `ApiServer` leaves signals alone:
its owner sets `should_exit`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from soma.types.error import SomaError

START_TIMEOUT_S = 30.0


class ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class RunningApi:
    """An ApiServer serving `app` on host:port, started and stopped by its owner."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.server = ApiServer(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.address = f"{host}:{port}"
        self._task: asyncio.Future[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self.server.serve())
        async with asyncio.timeout(START_TIMEOUT_S):
            while not self.server.started:
                if self._task.done():
                    self._task.result()
                    raise SomaError(f"the API could not listen on {self.address}")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
