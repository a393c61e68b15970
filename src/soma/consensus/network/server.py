"""The consensus gRPC server of one validator: authenticates the caller, decodes the
request, asks the authority's handler, and encodes the answer.

Generic handlers over raw bytes (no generated stubs): every request and response is one
BCS struct from `wire`. A call from a non-member, a malformed request, or a peer that the
authority has dropped for misbehaving is refused with a gRPC status; nothing a caller sends
can raise out of a handler.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc

from soma.consensus.errors import InvalidRequestError
from soma.consensus.network import tls, wire
from soma.consensus.network.auth import PeerAuthenticator, PeerAuthError
from soma.types.bcs import BcsStruct
from soma.types.error import SomaError
from soma.types.tls import TlsIdentity

logger = logging.getLogger(__name__)

#: Largest gRPC response (a fetch answer of many blocks) and request (a list of refs:
#: requests are small, and a peer must not make us decode megabytes to refuse one).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_REQUEST_BYTES = 1024 * 1024

R = TypeVar("R", bound=BcsStruct)
if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[bytes, bytes]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def channel_options(
    max_message_bytes: int = MAX_MESSAGE_BYTES, max_receive_bytes: int | None = None
) -> list[tuple[str, int]]:
    """Options for a channel or server: messages up to `max_message_bytes` sent, and up
    to `max_receive_bytes` (default the same) received."""
    receive = max_message_bytes if max_receive_bytes is None else max_receive_bytes
    return [
        ("grpc.max_receive_message_length", receive),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
        # Reconnect to a peer that was away within seconds, not gRPC's default of up
        # to two minutes of backoff.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]


def server_options(
    max_message_bytes: int = MAX_MESSAGE_BYTES, max_receive_bytes: int | None = None
) -> list[tuple[str, int]]:
    """`channel_options` for a server, which also owns its port alone: gRPC's default
    SO_REUSEPORT would let a second server (a validator still stopping, another
    network) bind the same port and take half of its connections, instead of failing
    to start with "address in use"."""
    return [
        *channel_options(max_message_bytes, max_receive_bytes),
        ("grpc.so_reuseport", 0),
        # Clients keep idle connections alive with a ping every 10 s; gRPC servers by
        # default allow one every 5 minutes and answer more with GOAWAY
        # "too_many_pings", dropping the connection a client is about to use.
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.max_ping_strikes", 0),
    ]


class ConsensusServiceHandler(Protocol):
    """What the authority answers; `peer` is the authenticated caller's index."""

    def is_dropped(self, peer: int) -> bool: ...

    def report_bad_request(self, peer: int, reason: str) -> None: ...

    def subscribe_blocks(
        self, peer: int, request: wire.SubscribeBlocksRequest
    ) -> AsyncIterator[wire.BlockBatch]: ...

    async def fetch_blocks(
        self, peer: int, request: wire.FetchBlocksRequest
    ) -> wire.BlockBatch: ...

    async def fetch_commits(
        self, peer: int, request: wire.FetchCommitsRequest
    ) -> wire.FetchCommitsResponse: ...

    async def fetch_latest_blocks(
        self, peer: int, request: wire.FetchLatestBlocksRequest
    ) -> wire.BlockBatch: ...

    async def latest_rounds(
        self, peer: int, request: wire.LatestRoundsRequest
    ) -> wire.LatestRoundsResponse: ...


class ConsensusServer:
    def __init__(
        self,
        handler: ConsensusServiceHandler,
        authenticator: PeerAuthenticator,
        identity: TlsIdentity,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._handler = handler
        self._auth = authenticator
        self._identity = identity
        self._server = grpc.aio.server(
            options=server_options(max_message_bytes, max_receive_bytes=MAX_REQUEST_BYTES)
        )
        h = handler
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "SubscribeBlocks": grpc.unary_stream_rpc_method_handler(
                self._streaming(wire.SubscribeBlocksRequest, h.subscribe_blocks)
            ),
            "FetchBlocks": grpc.unary_unary_rpc_method_handler(
                self._unary(wire.FetchBlocksRequest, h.fetch_blocks)
            ),
            "FetchCommits": grpc.unary_unary_rpc_method_handler(
                self._unary(wire.FetchCommitsRequest, h.fetch_commits)
            ),
            "FetchLatestBlocks": grpc.unary_unary_rpc_method_handler(
                self._unary(wire.FetchLatestBlocksRequest, h.fetch_latest_blocks)
            ),
            "GetLatestRounds": grpc.unary_unary_rpc_method_handler(
                self._unary(wire.LatestRoundsRequest, h.latest_rounds)
            ),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(wire.SERVICE, methods),)
        )

    def bind(self, address: str) -> int:
        """Listen on `host:port` (port 0 picks a free one); returns the port."""
        return tls.listen(
            self._server, address, self._identity, self._auth.committee_certificates()
        )

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace_s: float = 0.5) -> None:
        await self._server.stop(grace_s)

    # --- plumbing ---------------------------------------------------------------------

    async def _admit(self, request: bytes, context: Context, kind: type[R]) -> tuple[int, R]:
        handshake = None
        for key, value in context.invocation_metadata() or ():
            if key == wire.AUTH_METADATA_KEY and isinstance(value, bytes):
                handshake = value
        try:
            peer = self._auth.authenticate(handshake, now_ms())
            self._auth.check_link(peer, tls.caller_certificate(context))
        except PeerAuthError as e:
            logger.warning("refused call from %s: %s", context.peer(), e)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(e))
            raise AssertionError("unreachable") from e
        if self._handler.is_dropped(peer):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"peer {peer} is dropped")
        try:
            decoded = kind.from_bytes(request)
        except SomaError as e:
            self._handler.report_bad_request(peer, f"malformed {kind.__name__}: {e}")
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            raise AssertionError("unreachable") from e
        return peer, decoded

    def _unary(
        self,
        kind: type[R],
        call: Callable[[int, R], Awaitable[BcsStruct]],
    ) -> Callable[[bytes, Context], Awaitable[bytes]]:
        async def handle(request: bytes, context: Context) -> bytes:
            peer, decoded = await self._admit(request, context, kind)
            try:
                response = await call(peer, decoded)
            except InvalidRequestError as e:
                self._handler.report_bad_request(peer, str(e))
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
                raise AssertionError("unreachable") from e
            except SomaError as e:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
                raise AssertionError("unreachable") from e
            return response.to_bytes()

        return handle

    def _streaming(
        self,
        kind: type[R],
        call: Callable[[int, R], AsyncIterator[BcsStruct]],
    ) -> Callable[[bytes, Context], AsyncIterator[bytes]]:
        async def handle(request: bytes, context: Context) -> AsyncIterator[bytes]:
            peer, decoded = await self._admit(request, context, kind)
            async for item in call(peer, decoded):
                yield item.to_bytes()

        return handle
