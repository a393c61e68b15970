"""Network faults for local clusters: one TCP forwarder per directed link.

In a cluster built with links, validator i dials validator j not at j's own port but at
the forwarder of link (i, j), which relays bytes both ways. Cutting a link closes its
connections and refuses new ones until it is healed, so the two validators really lose
each other (their gRPC calls fail, their streams break and reconnect with backoff), as
in a network partition, while both processes keep running with their state. Cutting
every link of one validator cuts it off from the committee. A link may also delay every
byte by a fixed one-way latency (`delay_s`), in order, as a long-haul link would. A tap
sees every chunk relayed, either way (what an eavesdropper on the link would read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

Tap = Callable[[bytes], None]


class LinkProxy:
    """Forwards connections to its port on 127.0.0.1 to `target` ("host:port", which may
    be set after the proxy started listening)."""

    def __init__(
        self, target: str | None = None, delay_s: float = 0.0, tap: Tap | None = None
    ) -> None:
        self.target = target
        self.delay_s = delay_s
        self.tap = tap
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.cut = False
        self.port = 0

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def set_cut(self, cut: bool) -> None:
        """Cut the link (reset its connections, refuse new ones) or heal it."""
        self.cut = cut
        if cut:
            self._reset_all()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._reset_all()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=2)
        if self._server is not None:
            await self._server.wait_closed()

    def _reset_all(self) -> None:
        # Aborting the transports ends both pumps of every connection at once.
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut or self.target is None:
            writer.transport.abort()
            return
        upstream: asyncio.StreamWriter | None = None
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            host, _, port = self.target.rpartition(":")
            up_reader, upstream = await asyncio.open_connection(host, int(port))
            self._writers.add(upstream)
            if self.cut:
                return
            await asyncio.gather(
                _pump(reader, upstream, self.delay_s, self.tap),
                _pump(up_reader, writer, self.delay_s, self.tap),
            )
        except OSError:
            pass
        finally:
            if task is not None:
                self._handlers.discard(task)
            for w in (writer, upstream):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay_s: float = 0.0,
    tap: Tap | None = None,
) -> None:
    if delay_s > 0:
        await _delayed_pump(reader, writer, delay_s, tap)
        return
    try:
        while data := await reader.read(1 << 16):
            if tap is not None:
                tap(data)
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.transport.abort()


async def _delayed_pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float, tap: Tap | None
) -> None:
    """Each chunk is written `delay_s` after it was read, in order (reading goes on
    meanwhile, so the delay is latency, not a throughput cap)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = loop.create_task(deliver())
    try:
        while data := await reader.read(1 << 16):
            if tap is not None:
                tap(data)
            queue.put_nowait((loop.time() + delay_s, data))
        queue.put_nowait((0.0, b""))
        await sender
    except OSError:
        pass
    finally:
        sender.cancel()
        writer.transport.abort()
