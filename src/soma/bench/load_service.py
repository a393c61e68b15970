"""The load port of a benchmark validator: a gRPC call that submits a batch of
transactions through the validator's TransactionClient and answers when the block
carrying them is committed (or garbage-collected), plus read-only views of its consensus
state (progress, the digests of its commits, peers it refused) that the benchmark driver
and the multi-process tests read. The driver measures latency from its send to the
submit's answer; the port stands in for the node's own submit path, which the authority
issue adds."""

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
COMMITS = f"/{SERVICE}/Commits"
#: Most commit digests one Commits call returns.
MAX_COMMITS_PER_CALL = 1_000


class SubmitOutcome(enum.IntEnum):
    COMMITTED = 0
    GARBAGE_COLLECTED = 1
    QUEUE_FULL = 2
    #: The baseline's log refused or lost an entry of the batch (pysyncobj's callback
    #: reported an error: no leader, leader changed, queue full, ...).
    FAILED = 3


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
    highest_accepted_round: u64 = 0
    #: Commits installed from certified commit ranges by the commit syncer.
    synced_commits: u64 = 0
    #: Invalid messages received, per peer index (0 for ourselves).
    bad_messages: tuple[u64, ...] = ()
    #: Times each peer was dropped for sending invalid messages.
    drops: tuple[u64, ...] = ()
    #: The round the amnesia guard learned from peers, if it ran.
    recovered_own_round: u64 | None = None


class CommitsRequest(BcsStruct):
    """Digests of the stored commits with index in [start, end]."""

    start: u64
    end: u64


class CommitsResponse(BcsStruct):
    digests: tuple[bytes, ...]


class LoadServer:
    def __init__(self, authority: ConsensusAuthority) -> None:
        self._authority = authority
        self._client = authority.transaction_client
        self._server = grpc.aio.server(options=channel_options())
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "Submit": grpc.unary_unary_rpc_method_handler(self._submit),
            "Stats": grpc.unary_unary_rpc_method_handler(self._stats),
            "Commits": grpc.unary_unary_rpc_method_handler(self._commits),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, methods),)
        )

    def bind(self, address: str) -> int:
        port: int = self._server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        return port

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(0.2)

    async def _stats(self, request: bytes, context: Context) -> bytes:
        authority = self._authority
        protocol = authority.protocol
        size = authority.context.size
        return StatsResponse(
            last_proposed_round=protocol.core.last_proposed_round,
            last_commit_index=protocol.dag.last_commit_index,
            highest_accepted_round=protocol.dag.highest_accepted_round,
            synced_commits=authority.synced_commits,
            bad_messages=tuple(protocol.bad_messages_total[p] for p in range(size)),
            drops=tuple(authority.drops[p] for p in range(size)),
            recovered_own_round=authority.recovered_own_round,
        ).to_bytes()

    async def _commits(self, request: bytes, context: Context) -> bytes:
        try:
            asked = CommitsRequest.from_bytes(request)
        except SomaError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
            raise AssertionError("unreachable") from e
        end = min(asked.end, asked.start + MAX_COMMITS_PER_CALL - 1)
        store = self._authority.protocol.dag.store
        digests = tuple(bytes(c.digest()) for c in store.scan_commits(asked.start, end))
        return CommitsResponse(digests).to_bytes()

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
