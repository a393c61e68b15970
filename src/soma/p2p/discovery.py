"""Discovery on asyncio: drives a `PeerTable` with the clock and the network.

A round every `interval_ms` (the first at once): expire what is stale, ask up to
`peers_per_round` random known peers with `ExchangePeers(our info)` in parallel, each
call with its deadline, and hand each answer or failure to the table. The server side
(`serve_exchange`, added to the node's `P2pServer` as `ExchangePeers`) hands the
caller's info to the table and answers with ours and a random sample of the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from soma.consensus.network.server import now_ms
from soma.metrics import sync as metrics
from soma.p2p import wire
from soma.p2p.client import P2pClient
from soma.p2p.errors import PeerCallError
from soma.p2p.peer_table import DialTarget, PeerTable
from soma.p2p.server import P2pServer

logger = logging.getLogger(__name__)


class Discovery:
    def __init__(
        self, table: PeerTable, client: P2pClient, clock: Callable[[], int] = now_ms
    ) -> None:
        self.table = table
        self._client = client
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        #: Rounds completed: tests bound how many it takes to learn every peer.
        self.rounds = 0

    def register(self, server: P2pServer) -> None:
        server.add_unary(
            wire.EXCHANGE_PEERS,
            wire.ExchangePeersRequest,
            self.serve_exchange,
            max_request_bytes=wire.EXCHANGE_PEERS_MAX_REQUEST_BYTES,
        )

    async def serve_exchange(
        self, request: wire.ExchangePeersRequest, host: str
    ) -> wire.ExchangePeersResponse:
        now = self._clock()
        peers = self.table.handle_request(request.info, now)
        return wire.ExchangePeersResponse(self.table.own_info(now), tuple(peers))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="p2p-discovery")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        interval_s = self.table.parameters.interval_ms / 1000
        while True:
            try:
                await self.run_round()
            except Exception:  # a bug here must not end discovery for the process
                logger.exception("discovery round failed")
            await asyncio.sleep(interval_s)

    async def run_round(self) -> None:
        now = self._clock()
        self.table.expire(now)
        targets = self.table.targets(now)
        await asyncio.gather(*(self._exchange(t) for t in targets))
        self.rounds += 1
        metrics.P2P_PEERS.set(len(self.table.peers(self._clock())))

    async def _exchange(self, target: DialTarget) -> None:
        own = self.table.own_info(self._clock())
        timeout_s = self.table.parameters.call_timeout_ms / 1000
        try:
            reply = await self._client.exchange_peers(
                target.address, own, timeout_s=timeout_s, peer_id=target.peer_id
            )
        except PeerCallError as e:
            if e.malformed:
                logger.warning("dropping a P2P peer: %s", e.message)
                self.table.record_invalid(target, self._clock())
                await self._client.forget(target.address)
            elif self.table.record_failure(target, self._clock()):
                logger.info("dropping a P2P peer after repeated failures: %s", e.message)
                await self._client.forget(target.address)
            return
        proven = self._client.peer_id_at(target.address)
        if proven is not None and reply.info.peer_id != proven:
            # Its TLS key said one node, its signed info another: someone relays.
            logger.warning(
                "dropping P2P peer %s: answered as %s over a link proven by %s",
                target.address,
                reply.info.peer_id.hex()[:16],
                proven.hex()[:16],
            )
            self.table.record_invalid(target, self._clock())
            await self._client.forget(target.address)
            return
        outcome = self.table.handle_reply(target, reply.info, reply.peers, self._clock())
        if outcome.invalid is not None:
            logger.warning("dropping P2P peer %s: %s", target.address, outcome.invalid)
            await self._client.forget(target.address)
