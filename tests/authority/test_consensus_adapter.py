"""ConsensusAdapter against a fake consensus: deduplication by digest, batching, retry
after a garbage-collected block (unless ordered meanwhile), back-pressure, and waiting
out a full consensus queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence

import pytest

from soma.authority import consensus_adapter
from soma.authority.consensus_adapter import ConsensusAdapter
from soma.authority.errors import (
    AuthorityStoppedError,
    ConsensusOverloadedError,
    TransactionTooLargeError,
)
from soma.authority.synthetic_commits import SyntheticCommits
from soma.consensus.transaction import TransactionQueueFullError
from soma.consensus.transaction_client import BlockOutcome, BlockStatus, Inclusion
from soma.types.base import ObjectID, SomaAddress
from soma.types.consensus.block import BlockRef
from soma.types.consensus.transaction import (
    CommitSummarySignature,
    ConsensusTransaction,
    UserTransaction,
)
from soma.types.digests import BlockDigest, ObjectDigest, TransactionDigest
from soma.types.error import SomaError
from soma.types.object import ObjectRef
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin
from tests.authority.helpers import Chain

#: Liveness bound for the waits below (not a performance assertion).
WAIT_S = 5.0


def _is_signature(raw: bytes) -> bool:
    try:
        return isinstance(ConsensusTransaction.from_bytes(raw), CommitSummarySignature)
    except SomaError:
        return False


class FakeConsensus:
    """Takes submissions, refusing the first `full` ones as a full queue; the test
    settles each submission's block outcome."""

    def __init__(self, full: int = 0) -> None:
        self.full = full
        self.refusals: list[float] = []
        self.submissions: list[list[bytes]] = []
        self.outcomes: list[asyncio.Future[BlockOutcome]] = []
        self.attempts: list[float] = []
        self.error: Exception | None = None
        #: Summary signatures offered (not counted as submissions).
        self.signatures: list[bytes] = []

    async def submit(self, transactions: Sequence[bytes]) -> Inclusion:
        loop = asyncio.get_running_loop()
        self.attempts.append(loop.time())
        if self.error is not None:
            raise self.error
        if self.full > 0:
            self.full -= 1
            self.refusals.append(loop.time())
            raise TransactionQueueFullError("the transaction queue is full")
        if transactions and all(_is_signature(raw) for raw in transactions):
            # A validator's summary signatures: kept apart, their block committed at once.
            self.signatures.extend(transactions)
            signed: asyncio.Future[BlockOutcome] = loop.create_future()
            signed.set_result(BlockOutcome(BlockStatus.COMMITTED))
            return Inclusion(BlockRef(0, 0, BlockDigest(bytes(32))), signed)
        self.submissions.append(list(transactions))
        outcome: asyncio.Future[BlockOutcome] = loop.create_future()
        self.outcomes.append(outcome)
        block = BlockRef(len(self.submissions), 0, BlockDigest(bytes(32)))
        return Inclusion(block, outcome)

    def settle(self, index: int, status: BlockStatus) -> None:
        commit = 1 if status is BlockStatus.COMMITTED else None
        self.outcomes[index].set_result(BlockOutcome(status, commit))


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.001)


def _transactions() -> Iterator[SignedTransaction]:
    n = 0
    sender = SomaAddress.from_int(1)
    while True:
        n += 1
        coin = ObjectRef(ObjectID.from_int(n), 1, ObjectDigest(bytes(32)))
        gas = ObjectRef(ObjectID.from_int(10**6 + n), 1, ObjectDigest(bytes(32)))
        kind = TransferCoin(coin, 5, SomaAddress.from_int(2))
        yield SignedTransaction(TransactionData(kind, sender, gas, 10_000, None), ())


def txs(count: int) -> list[SignedTransaction]:
    source = _transactions()
    return [next(source) for _ in range(count)]


def payload(tx: SignedTransaction) -> bytes:
    return UserTransaction(tx).to_bytes()


class Ordered:
    """The `is_ordered` callback, with digests the test marks ordered."""

    def __init__(self) -> None:
        self.digests: set[TransactionDigest] = set()

    def __call__(self, digest: TransactionDigest) -> bool:
        return digest in self.digests


@pytest.fixture
async def fake() -> FakeConsensus:
    return FakeConsensus()


async def started(
    fake: FakeConsensus, ordered: Ordered | None = None, **kwargs: int
) -> ConsensusAdapter:
    adapter = ConsensusAdapter(fake, ordered or Ordered(), **kwargs)
    adapter.start()
    return adapter


# --- deduplication and batching --------------------------------------------------------


async def test_the_same_digest_is_offered_once(fake: FakeConsensus) -> None:
    adapter = await started(fake)
    try:
        (tx,) = txs(1)
        adapter.submit(tx)
        adapter.submit(tx)
        assert adapter.pending == 1
        await until(lambda: len(fake.submissions) == 1)
        adapter.submit(tx)  # still waiting for its block
        await asyncio.sleep(0.01)
        assert fake.submissions == [[payload(tx)]]
        assert adapter.pending == 1
    finally:
        await adapter.close()


async def test_transactions_arriving_together_go_in_one_batch(fake: FakeConsensus) -> None:
    adapter = await started(fake)
    try:
        batch = txs(5)
        for tx in batch:
            adapter.submit(tx)
        await until(lambda: len(fake.submissions) == 1)
        await asyncio.sleep(0.01)
        assert fake.submissions == [[payload(tx) for tx in batch]]
        fake.settle(0, BlockStatus.COMMITTED)
        await until(lambda: adapter.pending == 0)
        assert adapter.resubmitted == 0
    finally:
        await adapter.close()


async def test_batches_are_bounded(fake: FakeConsensus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consensus_adapter, "MAX_BATCH_TRANSACTIONS", 2)
    adapter = await started(fake)
    try:
        batch = txs(5)
        for tx in batch:
            adapter.submit(tx)
        await until(lambda: len(fake.submissions) == 3)
        assert [len(s) for s in fake.submissions] == [2, 2, 1]
        assert [p for s in fake.submissions for p in s] == [payload(tx) for tx in batch]
    finally:
        await adapter.close()


async def test_batches_are_bounded_in_bytes(
    fake: FakeConsensus, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = txs(3)
    size = len(payload(batch[0]))
    monkeypatch.setattr(consensus_adapter, "MAX_BATCH_BYTES", 2 * size)
    adapter = await started(fake)
    try:
        for tx in batch:
            adapter.submit(tx)
        await until(lambda: len(fake.submissions) == 2)
        assert [len(s) for s in fake.submissions] == [2, 1]
    finally:
        await adapter.close()


async def test_committed_transactions_stop_being_pending(fake: FakeConsensus) -> None:
    adapter = await started(fake)
    try:
        first, second = txs(2)
        adapter.submit(first)
        await until(lambda: len(fake.submissions) == 1)
        adapter.submit(second)
        await until(lambda: len(fake.submissions) == 2)
        fake.settle(0, BlockStatus.COMMITTED)
        await until(lambda: adapter.pending == 1)
        fake.settle(1, BlockStatus.COMMITTED)
        await until(lambda: adapter.pending == 0)
        # Once committed, the same digest could be offered again (the authority does
        # not: it checks the epoch store first).
        adapter.submit(first)
        await until(lambda: len(fake.submissions) == 3)
    finally:
        await adapter.close()


# --- retries ---------------------------------------------------------------------------


async def test_a_garbage_collected_batch_is_offered_again_unless_ordered_meanwhile(
    fake: FakeConsensus,
) -> None:
    ordered = Ordered()
    adapter = await started(fake, ordered)
    try:
        keep, carried, forgotten = txs(3)
        for tx in (keep, carried, forgotten):
            adapter.submit(tx)
        await until(lambda: len(fake.submissions) == 1)
        ordered.digests.add(carried.digest())  # in another validator's block
        adapter.forget(forgotten.digest())  # seen in a commit already
        fake.settle(0, BlockStatus.GARBAGE_COLLECTED)
        await until(lambda: len(fake.submissions) == 2)
        assert fake.submissions[1] == [payload(keep)]
        assert adapter.resubmitted == 1
        # Garbage-collected again: offered again.
        fake.settle(1, BlockStatus.GARBAGE_COLLECTED)
        await until(lambda: len(fake.submissions) == 3)
        assert fake.submissions[2] == [payload(keep)]
        assert adapter.resubmitted == 2
        fake.settle(2, BlockStatus.COMMITTED)
        await until(lambda: adapter.pending == 0)
    finally:
        await adapter.close()


async def test_nothing_is_offered_again_if_all_was_ordered(fake: FakeConsensus) -> None:
    ordered = Ordered()
    adapter = await started(fake, ordered)
    try:
        batch = txs(2)
        for tx in batch:
            adapter.submit(tx)
        await until(lambda: len(fake.submissions) == 1)
        ordered.digests.update(tx.digest() for tx in batch)
        fake.settle(0, BlockStatus.GARBAGE_COLLECTED)
        await until(lambda: adapter.pending == 0)
        await asyncio.sleep(0.01)
        assert len(fake.submissions) == 1
        assert adapter.resubmitted == 0
    finally:
        await adapter.close()


async def test_a_full_consensus_queue_is_waited_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    retry = 0.02
    monkeypatch.setattr(consensus_adapter, "QUEUE_FULL_RETRY_S", retry)
    fake = FakeConsensus(full=2)
    adapter = await started(fake)
    try:
        batch = txs(2)
        for tx in batch:
            adapter.submit(tx)
        await until(lambda: len(fake.submissions) == 1)
        assert len(fake.refusals) == 2
        assert fake.submissions == [[payload(tx) for tx in batch]]
        gaps = [b - a for a, b in zip(fake.attempts, fake.attempts[1:], strict=False)]
        assert len(gaps) == 2 and all(gap >= retry * 0.9 for gap in gaps)
        assert adapter.pending == 2
        fake.settle(0, BlockStatus.COMMITTED)
        await until(lambda: adapter.pending == 0)
    finally:
        await adapter.close()


async def test_a_forgotten_transaction_is_not_retried_after_a_full_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consensus_adapter, "QUEUE_FULL_RETRY_S", 0.02)
    fake = FakeConsensus(full=1)
    adapter = await started(fake)
    try:
        keep, gone = txs(2)
        adapter.submit(keep)
        adapter.submit(gone)
        await until(lambda: len(fake.refusals) == 1)
        adapter.forget(gone.digest())
        await until(lambda: len(fake.submissions) == 1)
        assert fake.submissions == [[payload(keep)]]
    finally:
        await adapter.close()


async def test_a_failing_submitter_does_not_leave_transactions_pending(
    fake: FakeConsensus,
) -> None:
    fake.error = RuntimeError("consensus broke")
    adapter = await started(fake)
    try:
        (tx,) = txs(1)
        adapter.submit(tx)
        await until(lambda: adapter.pending == 0)
        fake.error = None
        adapter.submit(tx)  # not deduplicated away
        await until(lambda: len(fake.submissions) == 1)
    finally:
        await adapter.close()


# --- back-pressure and shutdown --------------------------------------------------------


async def test_beyond_max_pending_submissions_are_refused(fake: FakeConsensus) -> None:
    adapter = await started(fake, max_pending=2)
    try:
        a, b, c = txs(3)
        adapter.submit(a)
        adapter.submit(b)
        with pytest.raises(ConsensusOverloadedError) as info:
            adapter.submit(c)
        assert info.value.code == "CONSENSUS_OVERLOADED"
        assert "2 transactions" in info.value.message
        adapter.submit(a)  # a duplicate is no new load
        assert adapter.pending == 2
        await until(lambda: len(fake.submissions) == 1)
        fake.settle(0, BlockStatus.COMMITTED)
        await until(lambda: adapter.pending == 0)
        adapter.submit(c)
        assert adapter.pending == 1
    finally:
        await adapter.close()


async def test_forget_makes_room(fake: FakeConsensus) -> None:
    adapter = await started(fake, max_pending=1)
    try:
        a, b = txs(2)
        adapter.submit(a)
        with pytest.raises(ConsensusOverloadedError):
            adapter.submit(b)
        adapter.forget(a.digest())
        adapter.submit(b)
        assert adapter.pending == 1
    finally:
        await adapter.close()


async def test_a_transaction_too_large_for_consensus_is_refused(fake: FakeConsensus) -> None:
    (tx,) = txs(1)
    adapter = await started(fake, max_transaction_bytes=len(payload(tx)) - 1)
    try:
        with pytest.raises(TransactionTooLargeError) as info:
            adapter.submit(tx)
        assert info.value.code == "TRANSACTION_TOO_LARGE"
        assert str(len(payload(tx))) in info.value.message
        assert adapter.pending == 0
    finally:
        await adapter.close()


async def test_after_close_nothing_is_accepted(fake: FakeConsensus) -> None:
    adapter = await started(fake)
    (tx, other) = txs(2)
    adapter.submit(tx)
    await until(lambda: len(fake.submissions) == 1)
    await adapter.close()
    assert adapter.pending == 0
    with pytest.raises(AuthorityStoppedError):
        adapter.submit(other)


# --- through an AuthorityState ---------------------------------------------------------


async def test_an_authority_state_offers_validated_transactions_and_forgets_ordered_ones(
    fake: FakeConsensus,
) -> None:
    chain = Chain()
    state = chain.authority_state()
    await state.start(fake)
    try:
        coin, gas, _ = chain.coins(0)
        tx = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas)
        assert await state.submit(tx) == tx.digest()
        await until(lambda: len(fake.submissions) == 1)
        assert fake.submissions == [[payload(tx)]]
        assert state.adapter is not None and state.adapter.pending == 1
        # The block is committed: consensus hands the commit over.
        await state.handle_commit(SyntheticCommits().next(fake.submissions))
        assert state.adapter.pending == 0
        async with asyncio.timeout(WAIT_S):
            effects = await state.wait_for_effects(tx.digest())
        assert effects.status.is_success()
        # Submitting it again is a no-op.
        assert await state.submit(tx) == tx.digest()
        await asyncio.sleep(0.01)
        assert len(fake.submissions) == 1
    finally:
        await state.stop()
