"""Calls to other nodes' P2P servers: typed, with deadlines and size caps.

One channel per address, kept in a bounded table (least recently used idle channels are
closed beyond `max_channels`), because discovery may hear of a thousand peers and call a
few of them at a time. Every call has a timeout. A failed call is a `PeerCallError`
naming the peer (address, and peer id when the caller expects one) and the gRPC status
(and the peer's error code when it refused with one); an answer that does not decode as
the expected message, or is larger than the method allows, is a `PeerCallError` with
`malformed` set, which the caller should treat as misbehaviour rather than a fault.

Links are TLS: before the first call to an address the client reads the certificate
the node there presents, checks that it is bound to a network key (the peer id the
caller expects, when it names one) and pins the channel to it; a node with another key
at that address then fails the handshake.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import TypeVar

import grpc

from soma.consensus.network import tls
from soma.consensus.network.server import channel_options
from soma.consensus.network.tls import TlsHandshakeError
from soma.metrics import sync as metrics
from soma.p2p import wire
from soma.p2p.errors import PeerCallError
from soma.p2p.node_info import SignedNodeInfo
from soma.types.bcs import BcsStruct
from soma.types.crypto import Ed25519PublicKey
from soma.types.error import SomaError
from soma.types.tls import network_key_of_certificate

R = TypeVar("R", bound=BcsStruct)
_REMOTE_CODE = re.compile(r"\[([A-Z0-9_]+)\] ", re.ASCII)
#: Channels kept open at most (idle ones beyond are closed, least recently used first).
MAX_CHANNELS = 128


class P2pClient:
    def __init__(
        self,
        *,
        max_response_bytes: int = wire.MAX_RESPONSE_BYTES,
        max_channels: int = MAX_CHANNELS,
    ) -> None:
        self._options = channel_options(wire.MAX_REQUEST_BYTES, max_response_bytes)
        self._max_response_bytes = max_response_bytes
        self._max_channels = max_channels
        self._channels: OrderedDict[str, grpc.aio.Channel] = OrderedDict()
        self._in_flight: dict[str, int] = {}
        #: The network key each open channel's certificate is bound to.
        self._peer_ids: dict[str, Ed25519PublicKey] = {}
        #: Addresses whose channel failed to connect: re-learn the certificate there.
        self._stale: set[str] = set()

    async def call(
        self,
        address: str,
        name: str,
        request: BcsStruct,
        response_type: type[R],
        *,
        timeout_s: float,
        peer_id: Ed25519PublicKey | None = None,
        max_response_bytes: int | None = None,
    ) -> R:
        """Call method `name` of the P2P service at `address`; `peer_id` is who the
        caller expects there (named in errors)."""
        cap = self._max_response_bytes if max_response_bytes is None else max_response_bytes
        channel = await self._acquire(address, peer_id, timeout_s)
        method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            wire.method_path(name)
        )
        payload = request.to_bytes()
        metrics.P2P_BYTES_SENT.labels(name).inc(len(payload))
        try:
            data = await method(payload, timeout=timeout_s)
        except grpc.aio.AioRpcError as e:
            details = e.details() or ""
            remote = _REMOTE_CODE.match(details)
            if e.code() is grpc.StatusCode.UNAVAILABLE:
                # Perhaps another node (another certificate) answers there now: learn
                # the certificate afresh on the next call.
                self._stale.add(address)
            raise PeerCallError(
                address,
                f"{name}: {e.code().name} {details}",
                peer_id=peer_id,
                status=e.code(),
                remote_code=remote.group(1) if remote else None,
            ) from None
        finally:
            self._release(address)
        metrics.P2P_BYTES_RECEIVED.labels(name).inc(len(data))
        if len(data) > cap:
            raise PeerCallError(
                address,
                f"{name}: answer of {len(data)} bytes; at most {cap}",
                peer_id=peer_id,
                malformed=True,
            )
        try:
            return response_type.from_bytes(data)
        except SomaError as e:
            raise PeerCallError(
                address, f"{name}: malformed answer: {e}", peer_id=peer_id, malformed=True
            ) from None

    async def exchange_peers(
        self,
        address: str,
        own: SignedNodeInfo,
        *,
        timeout_s: float,
        peer_id: Ed25519PublicKey | None = None,
    ) -> wire.ExchangePeersResponse:
        """Give the peer our signed info; its own and some it knows come back (checked
        by the caller: this only decodes them)."""
        return await self.call(
            address,
            wire.EXCHANGE_PEERS,
            wire.ExchangePeersRequest(own),
            wire.ExchangePeersResponse,
            timeout_s=timeout_s,
            peer_id=peer_id,
            max_response_bytes=wire.EXCHANGE_PEERS_MAX_RESPONSE_BYTES,
        )

    async def forget(self, address: str) -> None:
        """Close the channel to `address` (a dropped peer), unless a call is using it."""
        if address not in self._in_flight and address in self._channels:
            await self._close(address)

    async def close(self) -> None:
        for address in list(self._channels):
            await self._close(address)

    async def _acquire(
        self, address: str, peer_id: Ed25519PublicKey | None, timeout_s: float
    ) -> grpc.aio.Channel:
        """The channel to `address`, counted as in use until `_release`: over TLS pinned
        to the certificate found there, bound to `peer_id` when the caller expects one."""
        bound = self._peer_ids.get(address)
        mismatch = peer_id is not None and bound is not None and bound != peer_id
        renew = address in self._stale or mismatch
        if renew and address in self._channels and address not in self._in_flight:
            await self._close(address)  # learn afresh who is there
        if address not in self._channels:
            self._stale.discard(address)
        elif mismatch and bound is not None:
            # Still in use by calls to the node that is there: never to be reused as
            # a link to another.
            raise PeerCallError(
                address,
                f"TLS: the node there is {bound.hex()[:16]}",
                peer_id=peer_id,
                status=grpc.StatusCode.UNAUTHENTICATED,
            )
        while address not in self._channels and len(self._channels) >= self._max_channels:
            idle = next((a for a in self._channels if a not in self._in_flight), None)
            if idle is None:
                break  # every channel is in use: exceed the bound for now
            await self._close(idle)
        channel = self._channels.get(address)
        if channel is None:
            certificate = b""
            if not tls.plaintext_links():
                certificate = await self._certificate_at(address, peer_id, timeout_s)
            channel = self._channels.get(address)  # another call may have opened it
        if channel is None:
            channel = tls.dial(address, certificate, self._options)
            self._channels[address] = channel
        else:
            self._channels.move_to_end(address)
        self._in_flight[address] = self._in_flight.get(address, 0) + 1
        return channel

    async def _certificate_at(
        self, address: str, peer_id: Ed25519PublicKey | None, timeout_s: float
    ) -> bytes:
        """The certificate the node at `address` presents, checked to be bound to a
        network key (to `peer_id`, when given); a `PeerCallError` otherwise."""
        try:
            certificate = await tls.fetch_certificate(address, timeout_s)
            bound = network_key_of_certificate(certificate)
        except TlsHandshakeError as e:
            raise PeerCallError(
                address, str(e), peer_id=peer_id, status=grpc.StatusCode.UNAVAILABLE
            ) from None
        except SomaError as e:
            raise PeerCallError(
                address, f"TLS: {e}", peer_id=peer_id, status=grpc.StatusCode.UNAUTHENTICATED
            ) from None
        if peer_id is not None and bound != peer_id:
            raise PeerCallError(
                address,
                f"TLS: the node there is {bound.hex()[:16]}",
                peer_id=peer_id,
                status=grpc.StatusCode.UNAUTHENTICATED,
            )
        self._peer_ids[address] = bound
        return certificate

    def peer_id_at(self, address: str) -> Ed25519PublicKey | None:
        """The peer id the node at `address` proved over TLS (None before any call)."""
        return self._peer_ids.get(address)

    def _release(self, address: str) -> None:
        left = self._in_flight[address] - 1
        if left:
            self._in_flight[address] = left
        else:
            del self._in_flight[address]

    async def _close(self, address: str) -> None:
        self._peer_ids.pop(address, None)
        await self._channels.pop(address).close()
