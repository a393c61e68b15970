"""Calls from one validator to its peers' consensus servers.

One channel per peer, dialled at the address the committee lists for it (or one the
node's configuration gives for that peer); every call
carries a fresh signed handshake, a deadline, and a message-size cap. Failures surface as
`PeerCallError` (typed, with the peer and the gRPC status) for the caller to retry or
give up on; responses are decoded into `wire` structs, and a response that does not
decode is a `PeerCallError` too.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from typing import TypeVar

import grpc

from soma.consensus.network import tls, wire
from soma.consensus.network.auth import PeerAuthenticator
from soma.consensus.network.server import MAX_MESSAGE_BYTES, channel_options, now_ms
from soma.types.bcs import BcsStruct
from soma.types.committee import Committee
from soma.types.error import SomaError
from soma.types.tls import TlsIdentity

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=BcsStruct)


class PeerCallError(SomaError):
    code = "PEER_CALL"

    def __init__(
        self,
        peer: int,
        message: str,
        status: grpc.StatusCode | None = None,
        malformed: bool = False,
    ):
        super().__init__(f"peer {peer}: {message}")
        self.peer = peer
        self.status = status
        #: The peer answered, with bytes that do not decode: misbehaviour, not a fault.
        self.malformed = malformed


class ConsensusClient:
    def __init__(
        self,
        committee: Committee,
        own_index: int,
        authenticator: PeerAuthenticator,
        identity: TlsIdentity,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        peer_addresses: Mapping[int, str] | None = None,
    ) -> None:
        """`peer_addresses` replaces the committee's consensus address of some peers
        (a private route to them, or a test network's links)."""
        self._committee = committee
        self._peer_addresses = dict(peer_addresses or {})
        self._own = own_index
        self._auth = authenticator
        self._identity = identity
        self._options = channel_options(max_message_bytes)
        self._channels: dict[int, grpc.aio.Channel] = {}

    def _channel(self, peer: int) -> grpc.aio.Channel:
        channel = self._channels.get(peer)
        if channel is None:
            address = (
                self._peer_addresses.get(peer) or self._committee.members[peer].consensus_address
            )
            channel = tls.dial(
                address,
                self._committee.members[peer].tls_certificate,
                self._options,
                self._identity,
            )
            self._channels[peer] = channel
        return channel

    def _metadata(self, peer: int) -> tuple[tuple[str, bytes], ...]:
        return ((wire.AUTH_METADATA_KEY, self._auth.handshake_for(peer, now_ms())),)

    async def _unary(
        self, peer: int, method: str, request: BcsStruct, kind: type[R], timeout_s: float
    ) -> R:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self._channel(peer).unary_unary(
            method
        )
        try:
            data = await call(request.to_bytes(), metadata=self._metadata(peer), timeout=timeout_s)
        except grpc.aio.AioRpcError as e:
            raise PeerCallError(peer, f"{method}: {e.details()}", e.code()) from e
        try:
            return kind.from_bytes(data)
        except SomaError as e:
            raise PeerCallError(peer, f"{method}: malformed response: {e}", malformed=True) from e

    async def subscribe_blocks(
        self, peer: int, after_round: int
    ) -> AsyncGenerator[wire.BlockBatch, None]:
        """The peer's own blocks above `after_round`, then each new one, until the stream
        breaks (`PeerCallError`)."""
        call: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = self._channel(peer).unary_stream(
            wire.SUBSCRIBE_BLOCKS
        )
        stream = call(
            wire.SubscribeBlocksRequest(after_round).to_bytes(), metadata=self._metadata(peer)
        )
        try:
            async for data in stream:
                try:
                    yield wire.BlockBatch.from_bytes(data)
                except SomaError as e:
                    raise PeerCallError(peer, f"malformed block batch: {e}", malformed=True) from e
        except grpc.aio.AioRpcError as e:
            raise PeerCallError(peer, f"subscription: {e.details()}", e.code()) from e
        finally:
            stream.cancel()

    async def fetch_blocks(
        self, peer: int, request: wire.FetchBlocksRequest, timeout_s: float
    ) -> wire.BlockBatch:
        return await self._unary(peer, wire.FETCH_BLOCKS, request, wire.BlockBatch, timeout_s)

    async def fetch_commits(
        self, peer: int, request: wire.FetchCommitsRequest, timeout_s: float
    ) -> wire.FetchCommitsResponse:
        return await self._unary(
            peer, wire.FETCH_COMMITS, request, wire.FetchCommitsResponse, timeout_s
        )

    async def fetch_latest_blocks(
        self, peer: int, request: wire.FetchLatestBlocksRequest, timeout_s: float
    ) -> wire.BlockBatch:
        return await self._unary(
            peer, wire.FETCH_LATEST_BLOCKS, request, wire.BlockBatch, timeout_s
        )

    async def latest_rounds(self, peer: int, timeout_s: float) -> wire.LatestRoundsResponse:
        return await self._unary(
            peer,
            wire.GET_LATEST_ROUNDS,
            wire.LatestRoundsRequest(),
            wire.LatestRoundsResponse,
            timeout_s,
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
