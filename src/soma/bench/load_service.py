"""The load port of a benchmark validator: a gRPC call that submits a batch of
transactions through the validator's TransactionClient and answers when the block
carrying them is committed (or garbage-collected). The benchmark driver measures latency
from its send to this answer; it stands in for the node's own submit path, which the
authority issue adds."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import grpc

from soma.consensus.authority import ConsensusAuthority
from soma.consensus.network.server import channel_options
from soma.consensus.transaction import TransactionQueueFullError, TransactionTooLargeError
from soma.consensus.transaction_client import BlockStatus
from soma.types.bcs import BcsStruct, u8, u64
from soma.types.error import SomaError

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[bytes, bytes]

SERVICE = "soma.bench.Load"
SUBMIT = f"/{SERVICE}/Submit"
STATS = f"/{SERVICE}/Stats"


class SubmitOutcome(enum.IntEnum):
    COMMITTED = 0
    GARBAGE_COLLECTED = 1
    QUEUE_FULL = 2


class SubmitRequest(BcsStruct):
    transactions: tuple[bytes, ...]


class SubmitResponse(BcsStruct):
    outcome: u8
    commit_index: u64


class StatsRequest(BcsStruct):
    pass


class StatsResponse(BcsStruct):
    last_proposed_round: u64
    last_commit_index: u64


class LoadServer:
    def __init__(self, authority: ConsensusAuthority) -> None:
        self._authority = authority
        self._client = authority.transaction_client
        self._server = grpc.aio.server(options=channel_options())
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "Submit": grpc.unary_unary_rpc_method_handler(self._submit),
            "Stats": grpc.unary_unary_rpc_method_handler(self._stats),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, methods),)
        )

    def bind(self, address: str) -> int:
        port: int = self._server.add_insecure_port(address)
        return port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(0.2)

    async def _stats(self, request: bytes, context: Context) -> bytes:
        protocol = self._authority.protocol
        return StatsResponse(
            protocol.core.last_proposed_round, protocol.dag.last_commit_index
        ).to_bytes()

    async def _submit(self, request: bytes, context: Context) -> bytes:
        try:
            txs = SubmitRequest.from_bytes(request).transactions
        except SomaError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            raise AssertionError("unreachable") from e
        try:
            inclusion = await self._client.submit(txs)
        except TransactionQueueFullError:
            return SubmitResponse(int(SubmitOutcome.QUEUE_FULL), 0).to_bytes()
        except TransactionTooLargeError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            raise AssertionError("unreachable") from e
        outcome = await inclusion.outcome
        if outcome.status is BlockStatus.COMMITTED:
            return SubmitResponse(
                int(SubmitOutcome.COMMITTED), outcome.commit_index or 0
            ).to_bytes()
        return SubmitResponse(int(SubmitOutcome.GARBAGE_COLLECTED), 0).to_bytes()
