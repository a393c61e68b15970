"""Serving the HTTP API inside a process that handles its own signals.

uvicorn's `Server.serve` replaces the SIGINT/SIGTERM handlers while it runs and raises
the signal again when it stops; inside `soma start` (which stops the validators after
the API, in order) that would cut the shutdown short. `ApiServer` leaves signals alone:
its owner sets `should_exit`.

The server always speaks HTTP/1.1 through h11 (never httptools, which uvicorn would pick
when it is installed), with the app's `ApiLimits`: h11 buffers at most about
`max_head_bytes` of a request line and headers, and `JsonErrorH11Protocol` answers what
h11 refuses (414 for a request line too long, 431 for headers, 400 for anything not
HTTP) in the API's JSON form, reading and dropping what the client still sends for a
while, so that the client reads the answer instead of a reset connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import socket
from collections.abc import Generator
from typing import Any, ClassVar

import h11
import uvicorn
from fastapi import FastAPI
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.protocols.http.h11_impl import H11Protocol

from soma.rpc.limits import ApiLimits, error_body, error_headers
from soma.types.error import SomaError

START_TIMEOUT_S = 30.0


class ApiServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class JsonErrorH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering the requests h11 refuses in the API's JSON form
    (uvicorn's own answer is a plain-text 400 for all of them, and a reset connection
    when the client is still sending)."""

    #: What is read and dropped after such an answer, at most (bytes, seconds).
    linger_bytes: ClassVar[int] = ApiLimits.drain_bytes
    linger_seconds: ClassVar[float] = ApiLimits.drain_seconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lingered: int | None = None
        self._linger_timer: asyncio.TimerHandle | None = None

    def send_400_response(self, msg: str) -> None:
        status, code, message = self._refusal()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()
                return
            # The application is still reading this request: it now reads a disconnect,
            # and what it answers goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        body = error_body(code, message)
        headers = error_headers(body, close=True)
        try:
            output = self.conn.send(
                h11.Response(
                    status_code=status, headers=headers, reason=http.HTTPStatus(status).phrase
                )
            )
            output += self.conn.send(h11.Data(data=body))
            output += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self.transport.close()
            return
        self.transport.write(output)
        self._linger()

    def _refusal(self) -> tuple[int, str, str]:
        """Why h11 refused the request: 414 when its buffer passed the limit before the
        request line ended, 431 when the headers did, 400 otherwise."""
        limit = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        buffered, _ = self.conn.trailing_data
        idle = self.cycle is None or self.cycle.response_complete
        if idle and len(buffered) > limit:
            if b"\n" not in buffered.lstrip(b"\r\n"):
                return 414, "URL_TOO_LONG", f"the request line is longer than {limit} bytes"
            return 431, "HEADERS_TOO_LARGE", f"the request headers are longer than {limit} bytes"
        return 400, "INVALID_HTTP", "the request is not valid HTTP/1.1"

    def _linger(self) -> None:
        """Close our side, then read and drop what the client still sends until it
        closes its side or a limit passes (closing with data unread resets the
        connection, and the client may lose the answer)."""
        self._lingered = 0
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self._linger_timer = self.loop.call_later(self.linger_seconds, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingered is None:
            super().data_received(data)
            return
        self._lingered += len(data)
        if self._lingered > self.linger_bytes:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._lingered is None:
            super().shutdown()
        else:
            self.transport.close()


def uvicorn_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """The uvicorn settings for `app`, from the `ApiLimits` its `create_app` kept."""
    limits: ApiLimits = getattr(app.state, "limits", None) or ApiLimits()

    class Protocol(JsonErrorH11Protocol):
        linger_bytes = limits.drain_bytes
        linger_seconds = limits.drain_seconds

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        # uvicorn's own log config would give its loggers a handler of their own (plain
        # text, not propagated): its records go through the node's logging instead, in
        # the node's format (JSON lines stay JSON).
        log_config=None,
        http=Protocol,
        h11_max_incomplete_event_size=limits.max_head_bytes,
    )


class ApiPortTakenError(SomaError):
    code = "PORT_TAKEN"


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on host:port, or an `ApiPortTakenError` naming the address."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ApiPortTakenError(
            f"{host}:{port} (the HTTP API) is in use by another program ({e.strerror or e})"
        ) from None
    sock.set_inheritable(False)
    return sock


class RunningApi:
    """An ApiServer serving `app` on host:port, started and stopped by its owner.

    The listening socket is bound by this process (`listen`, possibly well before
    `start`), not by uvicorn inside its serving task: a port taken by another program
    is then a typed error raised where the owner can say so in one line, instead of
    uvicorn's `sys.exit(3)` escaping from a task."""

    def __init__(
        self, app: FastAPI, host: str, port: int, listener: socket.socket | None = None
    ) -> None:
        self.server = ApiServer(uvicorn_config(app, host, port))
        self.host, self.port = host, port
        self.address = f"{host}:{port}"
        self._socket = listener
        self._task: asyncio.Future[None] | None = None

    async def start(self) -> None:
        if self._socket is None:
            self._socket = listen(self.host, self.port)
        self._task = asyncio.ensure_future(self.server.serve(sockets=[self._socket]))
        async with asyncio.timeout(START_TIMEOUT_S):
            while not self.server.started:
                if self._task.done():
                    self._task.result()
                    raise SomaError(f"the API could not start on {self.address}")
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
