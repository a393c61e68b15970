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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from soma.authority import service_wire as wire
from soma.authority.commit_records import commit_records
from soma.authority.consensus_reads import consensus_commits, recent_dag_answer
from soma.authority.service_metrics import API, ServiceMetricsInterceptor
from soma.authority.state import AuthorityState, read_system_state
from soma.authority.supply import genesis_supply
from soma.consensus.network import tls
from soma.consensus.network.server import server_options
from soma.metrics import api as api_metrics
from soma.metrics import authority as metrics
from soma.types.bcs import BcsStruct
from soma.types.digests import TransactionDigest
from soma.types.effects import SignedTransactionEffects, TransactionEffects
from soma.types.error import SomaError
from soma.types.tls import TlsIdentity
from soma.types.transaction import SignedTransaction
from soma.utils.wait import wait_event

logger = logging.getLogger(__name__)

R = TypeVar("R", bound=BcsStruct)
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
if TYPE_CHECKING:
    from soma.consensus.core import Core

    Context = grpc.aio.ServicerContext[bytes, bytes]


#: Transactions checked between yields to the event loop in one SubmitTransactions.
SUBMIT_SLICE = 64
#: How often an effects stream with nothing to send looks whether the node replaced its
#: state (an epoch change, a catch-up): its registrations on the old one never resolve.
STATE_CHECK_S = 0.25


class BatchTooLargeError(SomaError):
    code = "BATCH_TOO_LARGE"


class ValidatorService:
    def __init__(
        self,
        state: Callable[[], AuthorityState],
        identity: TlsIdentity,
        consensus: Callable[[], Core | None] | None = None,
    ) -> None:
        #: The current epoch's AuthorityState (replaced at reconfiguration).
        self._state = state
        #: The Core of the consensus running now; None while the node follows the chain
        #: by state sync (or, without the callable, never: GetRecentDag then refuses).
        self._consensus = consensus
        #: Served over TLS with the node's identity; any node may call (no client
        #: certificate), so fullnodes submit here as validators do.
        self._identity = identity
        #: What genesis created, read from the store on first use (it never changes).
        self._genesis_supply: int | None = None
        self._server = grpc.aio.server(
            options=server_options(MAX_RESPONSE_BYTES, max_receive_bytes=wire.MAX_REQUEST_BYTES),
            interceptors=(ServiceMetricsInterceptor(),),
        )
        methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            "SubmitTransaction": self._unary(wire.SubmitTransactionRequest, self.submit),
            "WaitForEffects": self._unary(wire.WaitForEffectsRequest, self.wait_for_effects),
            "GetObject": self._unary(wire.GetObjectRequest, self.get_object),
            "GetOwnedObjects": self._unary(wire.GetOwnedObjectsRequest, self.get_owned_objects),
            "GetTransaction": self._unary(wire.GetTransactionRequest, self.get_transaction),
            "GetStatus": self._unary(wire.GetStatusRequest, self.get_status),
            "GetCertifiedSummary": self._unary(
                wire.GetCertifiedSummaryRequest, self.get_certified_summary
            ),
            "SubmitTransactions": self._unary(
                wire.SubmitTransactionsRequest, self.submit_transactions
            ),
            "StreamEffects": self._unary_stream(wire.StreamEffectsRequest, self.stream_effects),
            "GetBalance": self._unary(wire.GetBalanceRequest, self.get_balance),
            "GetCoins": self._unary(wire.GetCoinsRequest, self.get_coins),
            "GetSupply": self._unary(wire.GetSupplyRequest, self.get_supply),
            "GetRecentDag": self._unary(wire.GetRecentDagRequest, self.get_recent_dag),
            "GetCommits": self._unary(wire.GetCommitsRequest, self.get_commits),
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(wire.SERVICE, methods),)
        )
        for name in methods:
            api_metrics.declare(API, name)

    def bind(self, address: str) -> int:
        return tls.listen(self._server, address, self._identity)

    async def start(self) -> None:
        await self._server.start()

    async def stop(self, grace_s: float = 0.5) -> None:
        await self._server.stop(grace_s)

    # --- methods -----------------------------------------------------------------------

    async def submit(self, request: wire.SubmitTransactionRequest) -> BcsStruct:
        try:
            digest = await self._state().submit(request.transaction)
        except SomaError as e:
            metrics.REFUSED.labels(e.code).inc()
            raise
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

    async def submit_transactions(self, request: wire.SubmitTransactionsRequest) -> BcsStruct:
        """Each transaction as `submit` takes it, with its own outcome. Those that must
        wait for an input to appear wait concurrently; the rest cost no task."""
        if len(request.transactions) > wire.MAX_BATCH:
            raise BatchTooLargeError(
                f"{len(request.transactions)} transactions; at most {wire.MAX_BATCH} per call"
            )
        state = self._state()
        outcomes: list[wire.SubmitOutcome | None] = []
        waiting: list[tuple[int, SignedTransaction]] = []
        for position, raw in enumerate(request.transactions):
            if position and position % SUBMIT_SLICE == 0:
                await asyncio.sleep(0)  # consensus shares this event loop
            try:
                tx = SignedTransaction.from_bytes(raw)
            except SomaError as e:
                outcomes.append(_refused(TransactionDigest.zero(), e))
                continue
            try:
                if state.submit_now(tx):
                    outcomes.append(wire.SubmitOutcome(tx.digest(), None))
                    continue
            except SomaError as e:
                outcomes.append(_refused(tx.digest(), e))
                continue
            waiting.append((len(outcomes), tx))
            outcomes.append(None)
        if waiting:
            results = await asyncio.gather(
                *(state.submit(tx) for _, tx in waiting), return_exceptions=True
            )
            for (position, tx), result in zip(waiting, results, strict=True):
                if isinstance(result, SomaError):
                    outcomes[position] = _refused(tx.digest(), result)
                elif isinstance(result, BaseException):
                    raise result
                else:
                    outcomes[position] = wire.SubmitOutcome(tx.digest(), None)
        return wire.SubmitTransactionsResponse(tuple(o for o in outcomes if o is not None))

    async def stream_effects(self, request: wire.StreamEffectsRequest) -> AsyncIterator[BcsStruct]:
        """Signed effects of the requested digests, a message per group that became
        durable together, until all were sent or the timeout passed."""
        digests = list(dict.fromkeys(request.digests))
        if len(digests) > wire.MAX_BATCH:
            raise BatchTooLargeError(f"{len(digests)} digests; at most {wire.MAX_BATCH} per call")
        state = self._state()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(request.timeout_ms, wire.MAX_WAIT_MS) / 1000
        present, registrations = state.watch_effects(digests)
        ready: list[TransactionEffects] = present
        wake = asyncio.Event()

        def arrived(effects: TransactionEffects) -> None:
            ready.append(effects)
            wake.set()

        with registrations:
            for registration in registrations:
                registration.on_value(arrived)
            remaining = len(digests)
            while True:
                if ready:
                    batch = ready[:]
                    ready.clear()
                    remaining -= len(batch)
                    for message in _effects_messages(state, batch):
                        yield message
                if remaining <= 0:
                    return
                wake.clear()
                if not ready:
                    left = deadline - loop.time()
                    if left <= 0:
                        return
                    await wait_event(wake, min(left, STATE_CHECK_S))
                    if not ready and not self._serves(state):
                        # The node entered another epoch (or caught up): effects now come
                        # from the new state; the caller watches again there.
                        return

    def _serves(self, state: AuthorityState) -> bool:
        """Whether `state` is still the node's (not replaced at an epoch change)."""
        try:
            return self._state() is state
        except SomaError:
            return False

    async def get_object(self, request: wire.GetObjectRequest) -> BcsStruct:
        return wire.GetObjectResponse(self._state().get_object(request.object_id))

    async def get_owned_objects(self, request: wire.GetOwnedObjectsRequest) -> BcsStruct:
        page = self._state().owned_objects_page(
            request.owner, request.cursor, wire.page_limit(request.limit)
        )
        return wire.GetOwnedObjectsResponse(tuple(page.items), page.next_cursor)

    async def get_balance(self, request: wire.GetBalanceRequest) -> BcsStruct:
        balance, coins = self._state().balance(request.owner)
        return wire.GetBalanceResponse(balance, coins)

    async def get_coins(self, request: wire.GetCoinsRequest) -> BcsStruct:
        cursor = request.cursor
        page = self._state().coins_page(
            request.owner,
            None if cursor is None else (cursor.balance, cursor.object_id),
            wire.page_limit(request.limit),
        )
        after = page.next_cursor
        return wire.GetCoinsResponse(
            tuple(wire.CoinEntry(ref, balance) for ref, balance in page.items),
            None if after is None else wire.CoinCursor(*after),
        )

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
        verified = state.verified_summary()
        fork = state.fork
        return wire.GetStatusResponse(
            epoch=state.epoch,
            ordered_commit=state.commit_offset + state.last_consensus_commit(),
            latest_commit=state.executed_commit,
            latest_certified_commit=verified.index,
            state_root=verified.state_root,
            highest_certified_commit=state.highest_certified_commit,
            fork=None if fork is None else wire.ForkReport(fork.index, fork.own, fork.certified),
            system_state=read_system_state(state.store),
        )

    async def get_supply(self, request: wire.GetSupplyRequest) -> BcsStruct:
        state = self._state()
        if self._genesis_supply is None:
            self._genesis_supply = genesis_supply_of(state)
        return read_supply(state, self._genesis_supply)

    def _core(self) -> Core | None:
        return None if self._consensus is None else self._consensus()

    async def get_recent_dag(self, request: wire.GetRecentDagRequest) -> BcsStruct:
        """The blocks of the last rounds of this validator's DAG and its leader
        decisions (`soma.authority.consensus_reads`)."""
        state = self._state()
        return recent_dag_answer(self._core(), request.rounds, state.commit_offset)

    async def get_commits(self, request: wire.GetCommitsRequest) -> BcsStruct:
        """Records of executed commits (`soma.authority.commit_records`)."""
        state = self._state()
        lookup = consensus_commits(self._core(), state.commit_offset)
        records = commit_records(state, request.start, request.count, request.detail, lookup)
        return wire.GetCommitsResponse(tuple(records))

    async def get_certified_summary(self, request: wire.GetCertifiedSummaryRequest) -> BcsStruct:
        summaries = self._state().store.summaries
        if request.index is None:
            return wire.GetCertifiedSummaryResponse(summaries.last_certified())
        return wire.GetCertifiedSummaryResponse(summaries.certified_summary(request.index))

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

    def _unary_stream(
        self, kind: type[R], call: Callable[[R], AsyncIterator[BcsStruct]]
    ) -> grpc.RpcMethodHandler[Any, Any]:
        async def handle(request: bytes, context: Context) -> AsyncIterator[bytes]:
            try:
                decoded = kind.from_bytes(request)
            except SomaError as e:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
                raise AssertionError("unreachable") from e
            try:
                async for response in call(decoded):
                    yield response.to_bytes()
            except SomaError as e:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
                raise AssertionError("unreachable") from e

        return grpc.unary_stream_rpc_method_handler(handle)


def genesis_supply_of(state: AuthorityState) -> int:
    """What the genesis transaction created, from the copy the node's store holds (the
    one transaction of commit 0): every node has it, whether it started from the
    genesis file or synced from peers."""
    digests = state.store.summaries.contents_digests(0)
    genesis = None if not digests else state.get_transaction(digests[0])
    if genesis is None:
        raise SomaError("the store holds no genesis transaction")
    return genesis_supply(genesis.data)


def read_supply(state: AuthorityState, genesis: int) -> wire.GetSupplyResponse:
    """The state's supply (`AuthorityState.supply`) as the service answers it."""
    supply = state.supply()
    return wire.GetSupplyResponse(
        coins=supply.coins,
        stake=supply.stake,
        pending_fees=supply.pending_fees,
        total=supply.total,
        genesis=genesis,
    )


def _effects_messages(
    state: AuthorityState, batch: list[TransactionEffects]
) -> Iterator[wire.EffectsBatch]:
    """`batch` as stream messages, one per epoch the effects were executed in (almost
    always one), each with one batch signature."""
    by_epoch: dict[int, list[TransactionEffects]] = {}
    for effects in batch:
        by_epoch.setdefault(effects.executed_epoch, []).append(effects)
    for epoch, group in by_epoch.items():
        items: list[wire.EffectsItem] = []
        size = 0
        for effects in group:
            raw = effects.to_bytes()
            if items and size + len(raw) > wire.MAX_EFFECTS_MESSAGE_BYTES:
                yield _signed_batch(state, epoch, items)
                items, size = [], 0
            items.append(wire.EffectsItem(effects.transaction_digest, raw))
            size += len(raw) + 40
        if items:
            yield _signed_batch(state, epoch, items)


def _signed_batch(
    state: AuthorityState, epoch: int, items: list[wire.EffectsItem]
) -> wire.EffectsBatch:
    signature = state.sign_effects_batch(epoch, [i.effects for i in items])
    return wire.EffectsBatch(signature, tuple(items))


def _refused(digest: TransactionDigest, error: SomaError) -> wire.SubmitOutcome:
    metrics.REFUSED.labels(error.code).inc()
    return wire.SubmitOutcome(digest, wire.SubmitRefusal(error.code, error.message))
