"""AuthorityState: one validator's state machine for user transactions.

The path (docs/authority.md): `submit` validates a signed transaction against the live
state and hands it to the ConsensusAdapter; consensus orders it; `handle_commit`
(the CommitObserver's consumer) turns each commit into ordered transactions with their
shared versions, recorded in the epoch store; the execution driver runs them through the
TransactionManager, at most once each, into the write-back cache; flushed outputs are
readable (and survive a killed process), their effects are announced, and each commit's
state accumulator root is stored once all of its transactions have executed. The store
is synced at durability points (`checkpoint`), before the pending entries that could
re-execute what a power loss undid are forgotten.

On start, everything the epoch store holds as ordered but not executed is queued again
(already executed ones are skipped by their markers), and consensus replays from the
watermark: a crash anywhere between ordering and execution loses and repeats nothing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence

from soma.authority import faults
from soma.authority.accumulator import StateAccumulator
from soma.authority.cache import WritebackCache
from soma.authority.commit_summaries import (
    Fork,
    SummaryCertifier,
    build_summary,
    genesis_summary,
)
from soma.authority.consensus_adapter import ConsensusAdapter, ConsensusSubmitter
from soma.authority.consensus_handler import ConsensusHandler
from soma.authority.epoch_store import AuthorityPerEpochStore, PendingTransaction
from soma.authority.errors import (
    AuthorityStoppedError,
    EpochEndedError,
    EpochEndingError,
    ObjectNotFoundError,
    ObjectVersionUnavailableError,
)
from soma.authority.execution.executor import execute_transaction
from soma.authority.execution_metrics import record_execution
from soma.authority.indexes import Balance
from soma.authority.paging import Page
from soma.authority.store import AuthorityStore, TransactionOutputs
from soma.authority.summary_signer import SummarySigner
from soma.authority.supply import Supply, live_supply, unpaid_fees
from soma.authority.transaction_manager import TransactionManager
from soma.authority.transaction_preparer import TransactionPreparer
from soma.authority.validation import check_inputs, check_signature_and_expiry
from soma.metrics import authority as metrics
from soma.types.base import ObjectID, SomaAddress
from soma.types.commit_summary import (
    CertifiedCommitSummary,
    CommitSummary,
    EndOfEpochData,
    SignedCommitSummary,
)
from soma.types.consensus.commit import CommittedSubDag
from soma.types.consensus.transaction import EndOfPublish
from soma.types.crypto import AuthorityKeyPair
from soma.types.digests import TransactionDigest
from soma.types.effects import SignedTransactionEffects, TransactionEffects
from soma.types.epoch_start import EpochStart
from soma.types.error import SomaError
from soma.types.object import Object, ObjectRef
from soma.types.signature_batch import BATCH_INTENT, MerkleTree, batch_leaves
from soma.types.signature_info import AuthoritySignInfo
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, SystemState
from soma.types.transaction import (
    ChangeEpoch,
    ConsensusCommitPrologue,
    GenesisTransaction,
    ImmOrOwnedInput,
    SignedTransaction,
    TransactionData,
)
from soma.utils.notify_read import NotifyRead, Registrations

logger = logging.getLogger(__name__)
#: Faults a test build injected (none in a normal run; see soma.authority.faults).
_FAULTS = faults.from_environment()

#: Ordered transactions waiting for execution before consensus output is held back.
MAX_EXECUTION_BACKLOG = 50_000
#: Longest time between durability points (`checkpoint`): one fsync per interval
#: instead of one per flush.
CHECKPOINT_INTERVAL_S = 0.5
#: Transactions executed between yields to the event loop.
EXECUTION_SLICE = 256
#: Transactions executed between flushes while a backlog runs.
FLUSH_EVERY = 2_048
#: Summaries a validator signs again at once, at most (see `_resign_uncertified`).
MAX_RESIGNED = 1_000
#: How long a submission waits for an input version this validator has not reached.
INPUT_WAIT_S = 5.0
#: Once the epoch closes: the longest wait for this validator's own submissions to be
#: sequenced before its end-of-publish, and the interval at which it is sent again
#: until a commit counts it.
END_OF_PUBLISH_WAIT_S = 2.0
END_OF_PUBLISH_RETRY_S = 5.0
#: Digests of transactions this validator verified on submit (not verified again when
#: they come back through consensus).
VERIFIED_CACHE_SIZE = 100_000


def _verified_key(tx: SignedTransaction) -> bytes:
    """The digest and the signatures: what a verification vouched for."""
    return bytes(tx.digest()) + b"".join(bytes(sig) for sig in tx.tx_signatures)


def _may_appear_later(error: SomaError, tx: SignedTransaction, cache: WritebackCache) -> bool:
    """Whether an input refused as missing could still appear: named at a version above
    the live one, or not existing here yet (created by a transaction not yet executed)."""
    if isinstance(error, ObjectNotFoundError):
        return True
    for entry in tx.data.input_objects():
        if isinstance(entry, ImmOrOwnedInput):
            live = cache.get_live_object(entry.object_ref.object_id)
            if live is not None and live.version < entry.object_ref.version:
                return True
    return False


def initialize_genesis(store: AuthorityStore, genesis: TransactionData) -> TransactionEffects:
    """Execute the genesis transaction into an empty store (idempotent), and store the
    state accumulator of epoch 0 before its first commit."""
    tx = SignedTransaction(genesis, ())
    digest = tx.digest()
    effects = store.get_effects(digest)
    if effects is None:
        if store.last_accumulator() is not None or store.get_live_ref(SYSTEM_STATE_OBJECT_ID):
            raise SomaError("the store already holds another genesis")
        outputs = execute_transaction(tx, {}, store, 0, 0)
        store.write_outputs([outputs], sync=True)
        effects = outputs.effects
    if store.accumulator_at(0, 0) is None:
        acc = StateAccumulator()
        acc.apply_effects(effects)
        store.put_accumulator(0, 0, acc.to_bytes(), sync=True)
    if store.epoch_start(0) is None:
        store.put_epoch_start(EpochStart(genesis_system_state(genesis), 0))
    if store.summaries.summary(0) is None:
        raw = store.accumulator_at(0, 0)
        assert raw is not None
        start_ms = read_system_state(store).epoch_start_timestamp_ms
        summary = genesis_summary(tx, effects, StateAccumulator.from_bytes(raw).root(), start_ms)
        batch = store.db.batch()
        store.summaries.add_summary(batch, summary, (digest,))
        store.db.write(batch, sync=True)
    return effects


def genesis_system_state(genesis: TransactionData) -> SystemState:
    """The system state genesis creates (the live one moves on within epoch 0)."""
    if isinstance(genesis.kind, GenesisTransaction):
        for obj in genesis.kind.objects:
            if obj.id == SYSTEM_STATE_OBJECT_ID:
                return SystemState.from_object(obj)
    raise SomaError("the genesis transaction creates no system state")


def read_system_state(store: AuthorityStore) -> SystemState:
    obj = store.get_live_object(SYSTEM_STATE_OBJECT_ID)
    if obj is None:
        raise SomaError("the store has no system state: run genesis first")
    return SystemState.from_object(obj)


class AuthorityState:
    def __init__(
        self,
        key: AuthorityKeyPair | None,
        store: AuthorityStore,
        epoch_store: AuthorityPerEpochStore,
        cache: WritebackCache | None = None,
        commit_offset: int | None = None,
    ) -> None:
        """`commit_offset`: the global index of the last commit of the epochs before
        this one (summaries are indexed globally; consensus counts from 1 per epoch);
        the epoch store's unless given."""
        #: The validator's authority key; None on a fullnode, which executes what the
        #: committee certified but signs nothing.
        self._key = key
        self.name = None if key is None else key.name
        self.store = store
        self.epoch_store = epoch_store
        self.cache = cache if cache is not None else WritebackCache(store)
        self.cache.on_flush = self._on_flush
        self.tx_manager = TransactionManager()
        #: Decodes and checks peer blocks' transactions before their commit (its
        #: `add_blocks` is the ConsensusAuthority's block listener).
        self.preparer = TransactionPreparer(self._verify_ordered)
        self.handler = ConsensusHandler(
            epoch_store,
            executed_many=self.cache.executed_many,
            live_object=self.cache.get_live_object,
            verify=self._verify_ordered,
            sink=self._enqueue,
            prepared=self.preparer.take,
            signature_sink=self._on_signatures,
        )
        self.adapter: ConsensusAdapter | None = None
        self._effects = NotifyRead[TransactionDigest, TransactionEffects]()
        self._verified: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._unflushed: dict[TransactionDigest, tuple[int, int]] = {}
        #: Digests the handler found not executed, not yet run (no store read needed).
        self._fresh: set[TransactionDigest] = set()
        #: Pending keys whose outputs are flushed but maybe not durable yet.
        self._to_forget: list[tuple[int, int]] = []
        self._last_checkpoint = time.monotonic()
        # The state accumulator: the running value, the last commit it includes, and
        # for later commits the digests still to execute.
        self._accumulator = StateAccumulator()
        self._accumulated_index = 0
        self._commit_digests: dict[int, tuple[TransactionDigest, ...]] = {}
        self._commit_remaining: dict[int, set[TransactionDigest]] = {}
        #: Effects of transactions executed here and not yet accumulated (read back from
        #: the store only for those executed before a restart).
        self._unaccumulated: dict[TransactionDigest, TransactionEffects] = {}
        self._work = asyncio.Event()
        #: Set (and replaced) at every flush: submissions waiting for an input re-check.
        self._flushed = asyncio.Event()
        self._backlog_ok = asyncio.Event()
        self._backlog_ok.set()
        self._driver: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        self.accepting = True
        self.executed_count = 0
        # Commit summaries (soma.authority.commit_summaries): the last one built, the
        # certifier of this epoch's signatures, this validator's signer (with consensus
        # only), and the fork once one is found (execution then stops for good).
        self.commit_offset = epoch_store.commit_offset if commit_offset is None else commit_offset
        self._last_summary: CommitSummary | None = None
        through, above = store.summaries.certified_extent(self.commit_offset)
        self.certifier = SummaryCertifier(epoch_store.committee, through)
        for index in above:
            self.certifier.mark_certified(index)
        self._signer: SummarySigner | None = None
        self.fork: Fork | None = None
        #: Called with each summary this node builds (state sync waits on them).
        self.summary_listeners: list[Callable[[CommitSummary], None]] = []
        #: Set (and replaced) whenever a summary is built or a certificate added.
        self._progress = asyncio.Event()
        #: State sync recorded commits unsynced since the last durability point.
        self._synced_unsynced = False
        #: Summaries signed again this run, not yet certified.
        self._resigned: set[int] = set()
        #: Consensus (validators only) and the task that sends this validator's
        #: end-of-publish once the epoch closes.
        self._consensus: ConsensusSubmitter | None = None
        self._publisher: asyncio.Task[None] | None = None

    @property
    def epoch(self) -> int:
        return self.epoch_store.epoch

    @property
    def key(self) -> AuthorityKeyPair:
        if self._key is None:
            raise AuthorityStoppedError("a fullnode signs nothing: it has no authority key")
        return self._key

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, consensus: ConsensusSubmitter | None) -> None:
        """Recover what was ordered but not executed, then run the execution driver.
        `consensus` (a ConsensusAuthority's TransactionClient) takes submissions; without
        one this authority executes what it is given but accepts no submissions."""
        self._recover()
        # Where a restart resumes, not 0 until the next commit moves them.
        metrics.EPOCH.set(self.epoch)
        metrics.HIGHEST_EXECUTED_COMMIT.set(self.executed_commit)
        metrics.HIGHEST_CERTIFIED_COMMIT.set(self.certifier.certified_through)
        self.preparer.start()
        if consensus is not None:
            self._consensus = consensus
            self.adapter = ConsensusAdapter(consensus, self.epoch_store.is_processed)
            self.adapter.start()
            self._signer = SummarySigner(self.key, consensus, self.certifier.is_certified)
            self._signer.start()
            # Summaries signed before a restart whose signatures were never ordered (the
            # node stopped first): offer them again, or they would never be certified.
            self._resign_uncertified(self.executed_commit)
        self._driver = asyncio.get_running_loop().create_task(self._drive(), name="execution")
        self._work.set()
        self._on_epoch_end_progress()

    async def stop(self) -> None:
        self.accepting = False
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.wait([self._publisher])
            self._publisher = None
        await self.preparer.close()
        if self.adapter is not None:
            await self.adapter.close()
        if self._signer is not None:
            await self._signer.close()
        if self._driver is not None:
            # asyncio.wait, not `await driver`: a cancellation of stop() itself must
            # propagate, not be mistaken for the driver's.
            self._driver.cancel()
            await asyncio.wait([self._driver])
            if not self._driver.cancelled():
                self._driver.exception()  # logged and kept in `failure` by the driver
        self._driver = None
        if self.failure is None:
            self.cache.flush()
            self._advance_accumulator()
            self.checkpoint()

    def _recover(self) -> None:
        epoch = self.epoch
        last = self.store.last_accumulator()
        if last is None:
            raise SomaError("the store has no state accumulator: run genesis first")
        (acc_epoch, acc_index), raw = last
        self._accumulator = StateAccumulator.from_bytes(raw)
        self._accumulated_index = acc_index if acc_epoch == epoch else 0
        self._recover_summaries()
        # Past the epoch's last commit, commits carry signatures only.
        watermark = self.handled_commit - self.commit_offset
        for index in range(self._accumulated_index + 1, watermark + 1):
            ordered = self.epoch_store.commit_transactions(index)
            if ordered is None:
                raise SomaError(f"the epoch store lost the transactions of commit {index}")
            self._track_commit(index, ordered.digests)
        done: list[tuple[int, int]] = []
        todo: list[PendingTransaction] = []
        for item in self.epoch_store.pending():
            if self.cache.is_executed(item.transaction.digest()):
                done.append(item.key)
            else:
                todo.append(item)
        if done:
            # What the store holds may not be on disk yet (written unsynced before a
            # crash of the process): make it durable before forgetting anything.
            self._to_forget.extend(done)
            self.checkpoint()
        if todo:
            logger.info("recovering %d ordered transactions not yet executed", len(todo))
        self.tx_manager.enqueue(todo)
        self._advance_accumulator()

    # --- submission ----------------------------------------------------------------------

    def validate_transaction(self, tx: SignedTransaction) -> None:
        """Raise the typed error that says why `tx` would not be offered to consensus."""
        self._check_accepting()
        check_signature_and_expiry(tx, self.epoch)
        self._remember_verified(tx)
        self.validate_inputs(tx)

    def validate_inputs(self, tx: SignedTransaction) -> None:
        self._check_accepting()
        check_inputs(tx.data, self.cache, self.epoch_store.transaction_fee)

    def _check_accepting(self) -> None:
        """Refuse user transactions once the epoch closes (both errors are retryable:
        the same transaction is taken in the next epoch)."""
        if not self.accepting:
            raise EpochEndedError(f"epoch {self.epoch} no longer accepts transactions")
        end = self.handler.epoch_end
        if end.ended:
            raise EpochEndedError(
                f"epoch {self.epoch} has ended: submit again in epoch {self.epoch + 1}"
            )
        if end.closing:
            raise EpochEndingError(
                f"epoch {self.epoch} is closing: submit again in epoch {self.epoch + 1}"
            )

    async def submit(self, tx: SignedTransaction) -> TransactionDigest:
        """Validate `tx` and offer it to consensus (a no-op once executed or ordered).

        An input this validator does not have yet at the version named (a coin created
        or changed by a transaction that others executed first) is waited for, up to
        `INPUT_WAIT_S`, before the transaction is refused: a client that got a
        certificate from a quorum should not be refused by a validator a moment behind.
        """
        if self.submit_now(tx):
            return tx.digest()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INPUT_WAIT_S
        while True:
            flushed = self._flushed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await flushed.wait()
            try:
                self.validate_inputs(tx)
                break
            except (ObjectNotFoundError, ObjectVersionUnavailableError) as e:
                if not _may_appear_later(e, tx, self.cache) or loop.time() >= deadline:
                    raise
        if self.adapter is None:
            raise AuthorityStoppedError("this authority takes no submissions")
        self._offer(tx)
        return tx.digest()

    def submit_now(self, tx: SignedTransaction) -> bool:
        """`submit` without waiting: True once `tx` is offered to consensus (or already
        ordered or executed), False when an input it names may still appear here (then
        `submit` waits for it); raises the typed error of any other refusal. The
        batched service path takes this for most transactions, sparing a task each."""
        if self.adapter is None:
            raise AuthorityStoppedError("this authority takes no submissions")
        digest = tx.digest()
        if self.cache.is_executed(digest) or self.epoch_store.is_processed(digest):
            return True
        check_signature_and_expiry(tx, self.epoch)
        self._remember_verified(tx)
        try:
            self.validate_inputs(tx)
        except (ObjectNotFoundError, ObjectVersionUnavailableError) as e:
            if _may_appear_later(e, tx, self.cache):
                return False
            raise
        self._offer(tx)
        return True

    def _offer(self, tx: SignedTransaction) -> None:
        assert self.adapter is not None
        raw = self.adapter.submit(tx)
        metrics.SUBMITTED.inc()
        if raw is not None:  # verified here: its commit need not decode or check it again
            self.preparer.add_verified(raw, tx)

    def _remember_verified(self, tx: SignedTransaction) -> None:
        self._verified[_verified_key(tx)] = None
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)

    def _verify_ordered(self, tx: SignedTransaction) -> bool:
        """Transactions found in committed blocks: checked unless we verified these very
        bytes (signatures included: a copy with another signature is checked again)."""
        if _verified_key(tx) in self._verified:
            return True
        try:
            check_signature_and_expiry(tx, self.epoch)
        except SomaError:
            return False
        return True

    # --- effects -------------------------------------------------------------------------

    async def wait_for_flush(self) -> None:
        """Until the next flush of executed outputs (their objects, indexes and effects
        readable together): a reader waiting for this node's state to move."""
        await self._flushed.wait()

    async def wait_for_effects(self, digest: TransactionDigest) -> TransactionEffects:
        """The effects of `digest` once they are durable (cancel to stop waiting)."""
        values = await self._effects.read([digest], self._fetch_effects)
        return values[0]

    def _fetch_effects(self, keys: Sequence[TransactionDigest]) -> list[TransactionEffects | None]:
        return [self.store.get_effects(k) for k in keys]

    def watch_effects(
        self, digests: Sequence[TransactionDigest]
    ) -> tuple[list[TransactionEffects], Registrations[TransactionDigest, TransactionEffects]]:
        """The durable effects among `digests` now, and registrations that resolve for
        the others when they become durable. The caller cancels the registrations
        (they are a context manager) when it stops waiting."""
        registrations = self._effects.register_all(digests)
        present: list[TransactionEffects] = []
        for effects, registration in zip(self._fetch_effects(digests), registrations, strict=True):
            if effects is not None:
                registration.cancel()
                present.append(effects)
        return present, registrations

    def sign_effects(self, effects: TransactionEffects) -> SignedTransactionEffects:
        return SignedTransactionEffects.sign(effects, self.key, effects.executed_epoch)

    def sign_effects_batch(self, epoch: int, effects: Sequence[bytes]) -> AuthoritySignInfo:
        """One signature over many effects (BCS bytes) executed in `epoch`: over the
        Merkle root of their leaves, in order (`soma.types.signature_batch`)."""
        tree = MerkleTree(batch_leaves(TransactionEffects.INTENT, effects))
        return AuthoritySignInfo.create(self.key, epoch, BATCH_INTENT, tree.root)

    async def wait_for_signed_effects(self, digest: TransactionDigest) -> SignedTransactionEffects:
        return self.sign_effects(await self.wait_for_effects(digest))

    # --- consensus output ----------------------------------------------------------------

    async def handle_commit(self, subdag: CommittedSubDag) -> None:
        """The CommitObserver's consumer: order the commit's transactions for execution.
        Holds consensus back while execution is too far behind."""
        await self._wait_for_room()
        pending = self.handler.handle(subdag)
        metrics.COMMIT_ROUND.set(subdag.leader.round)
        if pending:
            # The handler let through only transactions not executed yet.
            digests = tuple(p.transaction.digest() for p in pending)
            self._track_commit(subdag.commit.index, digests, fresh=True)
            self._fresh.update(digests)
        if self.adapter is not None:
            for item in pending:
                self.adapter.forget(item.transaction.digest())
        self._on_epoch_end_progress()

    # --- the epoch's end -----------------------------------------------------------------

    @property
    def last_commit(self) -> int | None:
        """The epoch's last commit (local index), once fixed."""
        return self.handler.epoch_end.last_commit

    def epoch_done(self) -> bool:
        """The epoch's last commit is executed, its summary (with the next committee)
        built and certified: the node can enter the next epoch."""
        last = self.last_commit
        if last is None or self.fork is not None:
            return False
        index = self.commit_offset + last
        return self.executed_commit >= index and self.certifier.certified_through >= index

    async def wait_epoch_done(self) -> None:
        """Until `epoch_done` (an error if execution stops first)."""
        while not self.epoch_done():
            if self.failure is not None:
                raise SomaError(f"execution stopped before the epoch's end: {self.failure}")
            await self.wait_for_progress(1.0)

    def _on_epoch_end_progress(self) -> None:
        """Once the epoch closes, a validator sends its end-of-publish (once)."""
        end = self.handler.epoch_end
        if self._consensus is None or not end.closing or end.ended or self._publisher is not None:
            return
        logger.info(
            "epoch %d closes: no new transactions; end of publish once ours are sequenced",
            self.epoch,
        )
        self._publisher = asyncio.get_running_loop().create_task(
            self._publish_end(), name="end-of-publish"
        )

    async def _publish_end(self) -> None:
        """Wait until what this validator offered to consensus is sequenced (or
        `END_OF_PUBLISH_WAIT_S`), then send its end-of-publish, and again every
        `END_OF_PUBLISH_RETRY_S` until a commit counts it (its block may be lost)."""
        assert self._consensus is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + END_OF_PUBLISH_WAIT_S
        while self.adapter is not None and self.adapter.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        own = self.epoch_store.committee.index_of(self.key.name)
        raw = EndOfPublish().to_bytes()
        end = self.handler.epoch_end
        while not end.ended and own not in end.published:
            try:
                await self._consensus.submit([raw])
            except SomaError as e:
                logger.warning("end of publish not offered yet: %s", e)
            await asyncio.sleep(END_OF_PUBLISH_RETRY_S)

    async def _wait_for_room(self) -> None:
        """Hold the caller (consensus output, state sync) while execution is too far
        behind; for good once halted at a fork (the node stays up to report it, its
        peers go on without it)."""
        if self.fork is not None:
            await asyncio.Event().wait()
        if self.failure is not None:
            raise SomaError(f"execution failed: {self.failure}")
        while len(self.tx_manager) >= MAX_EXECUTION_BACKLOG:
            self._backlog_ok.clear()
            await self._backlog_ok.wait()
            if self.failure is not None:
                raise SomaError(f"execution failed: {self.failure}")

    async def execute_certified(
        self, certified: CertifiedCommitSummary, transactions: Sequence[SignedTransaction]
    ) -> None:
        """State sync's way in (where consensus is not): commit `certified.data.index`
        as the committee ordered it. The caller verified the certificate and that
        `transactions` are the commit's contents. The certificate is stored first, so
        this node's own summary of the commit is checked against it as soon as it is
        built; a repeat (after a restart) is ignored."""
        await self._wait_for_room()
        self.add_certified(certified, durable=False)
        local = certified.data.index - self.commit_offset
        pending = self.handler.handle_certified(local, transactions)
        prologue = transactions[0].data.kind
        if isinstance(prologue, ConsensusCommitPrologue):  # checked by the handler
            metrics.COMMIT_ROUND.set(prologue.round)
        if pending:
            # Not "fresh": after a power loss the epoch store may have lost this commit
            # while the outputs of some of its transactions survived; those are skipped
            # by their executed markers, never executed twice.
            self._track_commit(local, tuple(p.transaction.digest() for p in pending))
        self._synced_unsynced = True

    def last_consensus_commit(self) -> int:
        """For ConsensusAuthority's `last_processed_commit`: it replays from there."""
        return self.epoch_store.last_consensus_commit()

    @property
    def handled_commit(self) -> int:
        """The last commit (global) of the chain handed to execution here: past the
        epoch's last commit, consensus commits carry signatures only and are not part
        of the chain."""
        local = self.epoch_store.last_consensus_commit()
        last = self.last_commit
        return self.commit_offset + (local if last is None else min(local, last))

    def _enqueue(self, pending: list[PendingTransaction]) -> None:
        self.tx_manager.enqueue(pending)
        metrics.EXECUTION_BACKLOG.set(len(self.tx_manager))
        self._work.set()

    def _track_commit(
        self, index: int, digests: tuple[TransactionDigest, ...], fresh: bool = False
    ) -> None:
        self._commit_digests[index] = digests
        self._commit_remaining[index] = (
            set(digests) if fresh else {d for d in digests if not self.cache.is_executed(d)}
        )

    # --- execution -----------------------------------------------------------------------

    async def _drive(self) -> None:
        current: PendingTransaction | None = None  # the one executing, for the log
        try:
            while True:
                await self._work.wait()
                self._work.clear()
                if self.fork is not None:
                    return  # halted: executing on would only diverge further
                since_flush = 0
                while True:
                    ready = self.tx_manager.take_ready(EXECUTION_SLICE)
                    if not ready:
                        break
                    for current in ready:
                        self._execute(current)
                    current = None
                    since_flush += len(ready)
                    if since_flush >= FLUSH_EVERY:
                        # A long backlog (state sync, a restart) is flushed as it goes:
                        # effects are announced and summaries built all along, not
                        # only once the whole backlog has run.
                        since_flush = 0
                        self.cache.flush()
                        self._advance_accumulator()
                    await asyncio.sleep(0)
                self.cache.flush()
                self._advance_accumulator()
                metrics.EXECUTION_BACKLOG.set(len(self.tx_manager))
                if time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL_S:
                    self.checkpoint()
                if len(self.tx_manager) < MAX_EXECUTION_BACKLOG:
                    self._backlog_ok.set()
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            # A determinism bug or a storage fault: executing on would diverge.
            at = "" if current is None else f" at transaction {current.transaction.digest()}"
            logger.critical("execution stopped%s", at, exc_info=e)
            self.failure = e
            self._backlog_ok.set()  # wake consensus output waiting on us: it fails too
            raise

    def _execute(self, item: PendingTransaction) -> None:
        tx = item.transaction
        digest = tx.digest()
        if digest in self._fresh:
            # Checked by the handler, and nothing else runs it: skip the store read.
            self._fresh.discard(digest)
            fresh = True
        else:
            fresh = not self.cache.is_executed(digest)
        if fresh:
            epoch_fees = 0
            if isinstance(tx.data.kind, ChangeEpoch):
                epoch_fees = self._epoch_fees(item)
            started = time.perf_counter()
            outputs = execute_transaction(
                tx,
                item.shared_version_map(),
                self.cache,
                self.epoch,
                self.epoch_store.transaction_fee,
                epoch_fees=epoch_fees,
            )
            record_execution(tx, outputs.effects, time.perf_counter() - started)
            self._unflushed[digest] = item.key
            self._unaccumulated[digest] = outputs.effects
            self.cache.write(outputs)
            self.executed_count += 1
        elif self.store.executed_effects_digest(digest) is not None:
            # In the store already (a restart found it): no longer pending, once durable.
            self._to_forget.append(item.key)
        self.tx_manager.executed(item)
        remaining = self._commit_remaining.get(item.commit_index)
        if remaining is not None:
            remaining.discard(digest)

    def _epoch_fees(self, change: PendingTransaction) -> int:
        """The fees every transaction of the epoch charged, for the epoch change to pay
        out: it runs last (a barrier in the transaction manager), so all of them have
        executed, here or, for those ordered again after a restart, before."""
        if len(self.tx_manager) != 1:
            raise SomaError(
                f"the epoch change of epoch {self.epoch} ran with "
                f"{len(self.tx_manager) - 1} transactions of the epoch still to execute"
            )
        total = 0
        change_digest = change.transaction.digest()
        for digest, effects in self._epoch_effects(change.commit_index):
            if digest == change_digest:
                continue
            if effects is None:
                raise SomaError(f"the epoch change ran before transaction {digest}")
            total += effects.gas_used
        return total

    def _on_flush(self, flushed: list[TransactionOutputs]) -> None:
        keys = [self._unflushed.pop(o.digest) for o in flushed if o.digest in self._unflushed]
        self._to_forget.extend(keys)
        for outputs in flushed:
            self._effects.notify(outputs.digest, outputs.effects)
        event, self._flushed = self._flushed, asyncio.Event()
        event.set()

    def checkpoint(self) -> None:
        """A durability point: sync the store, then forget the pending transactions whose
        outputs it holds. Flushes are unsynced, so until this runs a power loss may undo
        them, and the pending entries are what re-executes them; forgetting them first
        could lose a transaction for good."""
        self._last_checkpoint = time.monotonic()
        if self._synced_unsynced:
            # Commits from state sync were recorded unsynced: make them durable too.
            self._synced_unsynced = False
            self.epoch_store.sync()
            self.store.sync()
        if not self._to_forget:
            return
        self.store.sync()
        keys, self._to_forget = self._to_forget, []
        self.epoch_store.forget_pending(keys)

    def _advance_accumulator(self) -> None:
        while self.fork is None:
            index = self._accumulated_index + 1
            remaining = self._commit_remaining.get(index)
            if remaining is None or remaining:
                return
            # On a copy, so a failure half-way leaves the accumulator as it was.
            updated = self._accumulator.copy()
            digests = self._commit_digests[index]
            changes = [self._effects_of(index, digest) for digest in digests]
            updated.apply_all(changes)
            if _FAULTS.diverge_at == self.commit_offset + index:
                updated.insert_bytes(b"soma: injected fault")  # a test's divergence
            summary = self._summarise(index, digests, changes, updated.root())
            self.store.put_commit_result(
                self.epoch, index, updated.to_bytes(), summary, digests, sync=False
            )
            self._accumulator = updated
            for digest in digests:
                self._unaccumulated.pop(digest, None)
            del self._commit_remaining[index]
            del self._commit_digests[index]
            self._accumulated_index = index
            self._summarised(summary)

    def _effects_of(self, index: int, digest: TransactionDigest) -> TransactionEffects:
        effects = self._unaccumulated.get(digest) or self.cache.get_effects(digest)
        if effects is None:
            raise SomaError(f"commit {index}: effects of {digest} are missing")
        return effects

    # --- commit summaries ----------------------------------------------------------------

    def _summarise(
        self,
        index: int,
        digests: Sequence[TransactionDigest],
        effects: Sequence[TransactionEffects],
        state_root: bytes,
    ) -> CommitSummary:
        """This node's summary of local commit `index`, chained to the last one."""
        previous = self._last_summary
        if previous is None:
            raise SomaError("no summary to chain to: the store has no genesis summary")
        transactions = []
        for digest in digests:
            tx = self.cache.get_transaction(digest)
            if tx is None:
                raise SomaError(f"commit {index}: transaction {digest} is missing")
            transactions.append(tx)
        end_of_epoch = None
        if index == self.last_commit:
            # The epoch change has run: the live system state is the next epoch's.
            system_state = self._live_system_state()
            end_of_epoch = EndOfEpochData(
                next_committee=system_state.committee(),
                next_epoch_start_timestamp_ms=system_state.epoch_start_timestamp_ms,
                final_state_root=state_root,
            )
        return build_summary(
            previous,
            self.epoch,
            self.commit_offset + index,
            transactions,
            effects,
            state_root,
            end_of_epoch,
        )

    def _live_system_state(self) -> SystemState:
        obj = self.cache.get_live_object(SYSTEM_STATE_OBJECT_ID)
        if obj is None:
            raise SomaError("the store has no system state")
        return SystemState.from_object(obj)

    def next_epoch_start(self) -> EpochStart:
        """Where the next epoch begins, once this one is done (`epoch_done`)."""
        last = self.last_commit
        if last is None:
            raise SomaError(f"epoch {self.epoch} has not ended")
        return EpochStart(self._live_system_state(), self.commit_offset + last)

    def _summarised(self, summary: CommitSummary) -> None:
        """A summary was built and stored: sign it (validators), check it against the
        certified one if known, tell whoever waits."""
        self._last_summary = summary
        metrics.HIGHEST_EXECUTED_COMMIT.set(summary.index)
        metrics.STATE_ROOT_UPDATES.inc()
        if self._signer is not None:
            self._signer.sign(summary)
        certified = self.store.summaries.certified_summary(summary.index)
        if certified is not None:
            self._check_fork(summary, certified)
        for listener in self.summary_listeners:
            listener(summary)
        self._progressed()

    def _recover_summaries(self) -> None:
        """Load the last summary; build those a store from before summaries lacks (from
        the epoch store's commits and the stored effects and accumulators); take again
        the signatures consensus ordered that no certificate holds yet."""
        summaries = self.store.summaries
        last = summaries.last_summary()
        if last is None:
            raise SomaError("the store has no genesis summary: run genesis first")
        self._last_summary = last
        for index in range(last.index - self.commit_offset + 1, self._accumulated_index + 1):
            ordered = self.epoch_store.commit_transactions(index)
            state = self.store.accumulator_at(self.epoch, index)
            if ordered is None or state is None:
                raise SomaError(f"cannot rebuild the summary of commit {index}: it is not stored")
            effects = [self._effects_of(index, d) for d in ordered.digests]
            root = StateAccumulator.from_bytes(state).root()
            summary = self._summarise(index, ordered.digests, effects, root)
            self.store.put_commit_result(
                self.epoch, index, state, summary, ordered.digests, sync=False
            )
            self._last_summary = summary
        self._on_signatures(list(self.epoch_store.summary_signatures()))

    def _on_signatures(self, signed: list[SignedCommitSummary]) -> None:
        """Signatures a commit ordered (recorded already): certify what they complete."""
        made = self.certifier.add(signed)
        for certified in made:
            self.add_certified(certified)
        self.epoch_store.forget_signatures_through(self.certifier.certified_through)
        if made and made[-1].data.index > self.certifier.certified_through + 1:
            # Later commits are certified and an earlier one is not: its signatures were
            # lost (a validator stopped before they were ordered). Sign it again.
            self._resign_uncertified(made[-1].data.index)

    def _resign_uncertified(self, through: int) -> None:
        """Offer again this validator's signatures over its summaries that are not
        certified, up to `through` (each at most once per run: the certificate needs
        only 2f+1 stake, and the others re-sign theirs too)."""
        if self._signer is None:
            return
        first = self.certifier.certified_through + 1
        last = min(through, self.executed_commit, first + MAX_RESIGNED - 1)
        for index in range(first, last + 1):
            if self.certifier.is_certified(index) or index in self._resigned:
                continue
            summary = self.store.summaries.summary(index)
            if summary is not None:
                self._resigned.add(index)
                self._signer.sign(summary)
        self._resigned = {i for i in self._resigned if i > self.certifier.certified_through}

    def add_certified(self, certified: CertifiedCommitSummary, durable: bool = True) -> None:
        """A certified summary, formed here or fetched by state sync (the caller verified
        it): store it (synced, unless `durable` is False: state sync can fetch it again,
        and the next durability point syncs it), stop collecting signatures for it, and
        check this node's own summary of that commit against it."""
        index = certified.data.index
        self.store.summaries.put_certified(certified, sync=durable)
        before = self.certifier.certified_through
        self.certifier.mark_certified(index)
        if self.certifier.certified_through > before:
            self.store.summaries.record_certified_through(self.certifier.certified_through)
        metrics.HIGHEST_CERTIFIED_COMMIT.set(self.certifier.certified_through)
        own = self.store.summaries.summary(index)
        if own is not None:
            self._check_fork(own, certified)
        self._progressed()

    def _progressed(self) -> None:
        event, self._progress = self._progress, asyncio.Event()
        event.set()

    async def wait_for_progress(self, timeout_s: float) -> bool:
        """Wait until a summary is built or a certificate added (True), or `timeout_s`
        passes (False): what a peer's long poll for new commits waits on."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._progress.wait()
        except TimeoutError:
            return False
        return True

    def _check_fork(self, own: CommitSummary, certified: CertifiedCommitSummary) -> None:
        if own.digest() == certified.data.digest() or self.fork is not None:
            return
        self.fork = Fork(own.index, own.digest(), certified.data.digest())
        error = self.fork.error()
        logger.critical("%s", error.message)
        self.failure = error
        self._work.set()  # the driver sees the fork and stops
        self._backlog_ok.set()

    @property
    def last_summary(self) -> CommitSummary | None:
        return self._last_summary

    @property
    def executed_commit(self) -> int:
        """The last commit (global) executed here: its summary is built."""
        return 0 if self._last_summary is None else self._last_summary.index

    @property
    def highest_certified_commit(self) -> int:
        """The highest commit known certified (every one up to it is)."""
        return self.certifier.certified_through

    def verified_summary(self) -> CommitSummary:
        """This node's summary of the last commit it executed that is certified: its own
        summaries up to there equal the certified ones (or it would have halted)."""
        index = min(self.certifier.certified_through, self.executed_commit)
        summary = self.store.summaries.summary(index)
        if summary is None:  # before the first certificate of a new store: genesis
            summary = self.store.summaries.summary(0)
        if summary is None:
            raise SomaError("the store has no genesis summary: run genesis first")
        return summary

    # --- queries -------------------------------------------------------------------------

    @property
    def accumulated_commit(self) -> int:
        """The last commit whose state root is known."""
        return self._accumulated_index

    def state_root(self, index: int | None = None) -> bytes | None:
        """The state root after commit `index` of this epoch (the latest if None)."""
        if index is None:
            return self._accumulator.root()
        raw = self.store.accumulator_at(self.epoch, index)
        return None if raw is None else StateAccumulator.from_bytes(raw).root()

    def get_object(self, object_id: ObjectID) -> Object | None:
        return self.cache.get_live_object(object_id)

    def owned_objects(self, owner: SomaAddress) -> list[ObjectRef]:
        """Every object `owner` owns (a scan of its whole index: checks and tests;
        clients page with `owned_objects_page`)."""
        return self.cache.owned_refs(owner)

    def owned_objects_page(
        self, owner: SomaAddress, cursor: ObjectID | None, limit: int
    ) -> Page[ObjectRef, ObjectID]:
        """Up to `limit` objects `owner` owns, by ID from `cursor` (inclusive)."""
        return self.cache.owned_page(owner, cursor, limit)

    def balance(self, owner: SomaAddress) -> Balance:
        """(total coin balance, number of coins) of `owner`, from the balance index."""
        return self.cache.balance(owner)

    def coins_page(
        self, owner: SomaAddress, cursor: tuple[int, ObjectID] | None, limit: int
    ) -> Page[tuple[ObjectRef, int], tuple[int, ObjectID]]:
        """Up to `limit` (coin, balance) of `owner`, largest first, from the coin
        `cursor` = (balance, object ID) (inclusive)."""
        return self.cache.coin_page(owner, cursor, limit)

    def get_transaction(self, digest: TransactionDigest) -> SignedTransaction | None:
        return self.cache.get_transaction(digest)

    def get_effects(self, digest: TransactionDigest) -> TransactionEffects | None:
        return self.cache.get_effects(digest)

    def live_refs(self) -> list[ObjectRef]:
        return list(self.cache.live_refs())

    def supply(self) -> Supply:
        """Every coin and every validator's stake in the live state, summed from the
        objects themselves, and the fees charged in this epoch that its epoch change has
        not paid out yet (a full scan: for operators and checks, not a hot path)."""
        objects = (self.get_object(ref.object_id) for ref in self.live_refs())
        return live_supply((o for o in objects if o is not None), self._unpaid_fees())

    def _unpaid_fees(self) -> int:
        last = self.last_commit
        if last is not None:
            ordered = self.epoch_store.commit_transactions(last)
            if ordered is not None and self.cache.is_executed(ordered.digests[-1]):
                return 0  # the epoch change ran and paid them
        charged = self._epoch_effects(self.handled_commit - self.commit_offset)
        return unpaid_fees((e for _, e in charged if e is not None), self.epoch)

    def _epoch_effects(
        self, through: int
    ) -> Iterator[tuple[TransactionDigest, TransactionEffects | None]]:
        """Each transaction ordered in this epoch's commits 1 to `through`, with its
        effects if it has executed."""
        for index in range(1, through + 1):
            ordered = self.epoch_store.commit_transactions(index)
            if ordered is None:
                raise SomaError(f"the epoch store lost the transactions of commit {index}")
            for digest in ordered.digests:
                yield digest, self._unaccumulated.get(digest) or self.cache.get_effects(digest)
