"""The validator service: the gRPC face of an AuthorityState for clients.

Generic handlers over BCS bytes, like the consensus service. A request that does not
decode is INVALID_ARGUMENT; a refused transaction is FAILED_PRECONDITION with the
error's code and message as the details (`[CODE] message`, which `ValidatorClient`
turns back into a typed `RemoteError`); nothing a caller sends can raise out of a
handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from soma.authority import service_wire as wire
from soma.authority.state import AuthorityState, read_system_state
from soma.consensus.network.server import channel_options
from soma.types.bcs import BcsStruct
from soma.types.effects import SignedTransactionEffects
from soma.types.error import SomaError

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=BcsStruct)
MAX_REQUEST_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[bytes, bytes]


class ValidatorService:
    def __init__(self, state: Callable[[], AuthorityState]) -> None:
        #: The current epoch's AuthorityState (replaced at reconfiguration).
        self._state = state
        self._server = grpc.aio.server(
            options=channel_options(MAX_RESPONSE_BYTES, max_receive_bytes=MAX_REQUEST_BYTES)
        )
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "SubmitTransaction": self._unary(wire.SubmitTransactionRequest, self.submit),
            "WaitForEffects": self._unary(wire.WaitForEffectsRequest, self.wait_for_effects),
            "GetObject": self._unary(wire.GetObjectRequest, self.get_object),
            "GetOwnedObjects": self._unary(wire.GetOwnedObjectsRequest, self.get_owned_objects),
            "GetTransaction": self._unary(wire.GetTransactionRequest, self.get_transaction),
            "GetStatus": self._unary(wire.GetStatusRequest, self.get_status),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(wire.SERVICE, methods),)
        )

    def bind(self, address: str) -> int:
        port: int = self._server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        return port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace_s: float = 0.5) -> None:
        await self._server.stop(grace_s)

    # --- methods -----------------------------------------------------------------------

    async def submit(self, request: wire.SubmitTransactionRequest) -> BcsStruct:
        digest = await self._state().submit(request.transaction)
        return wire.SubmitTransactionResponse(digest)

    async def wait_for_effects(self, request: wire.WaitForEffectsRequest) -> BcsStruct:
        timeout_s = min(request.timeout_ms, wire.MAX_WAIT_MS) / 1000
        state = self._state()
        try:
            async with asyncio.timeout(timeout_s):
                signed = await state.wait_for_signed_effects(request.digest)
        except TimeoutError:
            return wire.WaitForEffectsResponse(None)
        return wire.WaitForEffectsResponse(signed)

    async def get_object(self, request: wire.GetObjectRequest) -> BcsStruct:
        return wire.GetObjectResponse(self._state().get_object(request.object_id))

    async def get_owned_objects(self, request: wire.GetOwnedObjectsRequest) -> BcsStruct:
        refs = self._state().owned_objects(request.owner)[: wire.MAX_OWNED_OBJECTS]
        return wire.GetOwnedObjectsResponse(tuple(refs))

    async def get_transaction(self, request: wire.GetTransactionRequest) -> BcsStruct:
        state = self._state()
        tx = state.get_transaction(request.digest)
        effects = state.store.get_effects(request.digest)
        signed: SignedTransactionEffects | None = (
            None if effects is None else state.sign_effects(effects)
        )
        return wire.GetTransactionResponse(tx, signed)

    async def get_status(self, request: wire.GetStatusRequest) -> BcsStruct:
        state = self._state()
        return wire.GetStatusResponse(
            epoch=state.epoch,
            latest_commit=state.last_consensus_commit(),
            accumulated_commit=state.accumulated_commit,
            state_root=state.state_root() or b"",
            system_state=read_system_state(state.store),
        )

    # --- plumbing ----------------------------------------------------------------------

    def _unary(
        self, kind: type[R], call: Callable[[R], Awaitable[BcsStruct]]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        async def handle(request: bytes, context: Context) -> bytes:
            try:
                decoded = kind.from_bytes(request)
            except SomaError as e:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
                raise AssertionError("unreachable") from e
            try:
                response = await call(decoded)
            except SomaError as e:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
                raise AssertionError("unreachable") from e
            return response.to_bytes()

        return grpc.unary_unary_rpc_method_handler(handle)
