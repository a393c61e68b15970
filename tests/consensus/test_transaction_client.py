"""TransactionClient: a submission's acknowledgement (our block carrying it) and its fate
(committed with the commit index, or garbage-collected), back-pressure and shutdown; and
the same path end to end through four ConsensusAuthority instances over gRPC."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence

import pytest

from soma.consensus.authority import AuthorityConfig, ConsensusAuthority
from soma.consensus.local_committee import ValidatorKeys, free_ports, generate_committee
from soma.consensus.store import ConsensusStore
from soma.consensus.transaction import TransactionQueue, TransactionQueueFullError
from soma.consensus.transaction_client import (
    BlockOutcome,
    BlockStatus,
    Inclusion,
    TransactionClient,
)
from soma.types.committee import Committee
from soma.types.consensus.block import BlockRef
from soma.types.consensus.commit import CommittedSubDag
from soma.types.digests import BlockDigest
from tests.consensus.core_harness import Cluster

#: Liveness bound for the unit tests' waits (not a performance assertion).
TIMEOUT_S = 5.0


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def settle() -> None:
    """Let the other tasks run until they block."""
    for _ in range(5):
        await asyncio.sleep(0)


def start_submit(client: TransactionClient, txs: Sequence[bytes]) -> asyncio.Task[Inclusion]:
    return asyncio.get_running_loop().create_task(client.submit(txs))


async def cancel(tasks: Sequence[asyncio.Task[Inclusion]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def our_committed_block() -> tuple[BlockRef, CommittedSubDag, CommittedSubDag]:
    """A real block of authority 0's, the commit that includes it, and a commit that
    does not."""
    cluster = Cluster()
    cluster.run_until_round(10)
    commits = cluster.nodes[0].committed
    for subdag in commits:
        ours = [b for b in subdag.blocks if b.author == 0]
        if ours:
            other = next(s for s in commits if s is not subdag)
            return ours[0].reference(), subdag, other
    raise AssertionError("no commit holds a block of authority 0")


async def test_submit_waits_for_inclusion_then_outcome_settles_committed() -> None:
    block, commit, other = our_committed_block()
    assert all(b.reference() != block for b in other.blocks)
    queue = TransactionQueue()
    wakes = Wakes()
    client = TransactionClient(queue, wakes)
    first = start_submit(client, [b"a1", b"a2"])
    second = start_submit(client, [b"b1"])
    try:
        await settle()
        assert not first.done() and not second.done()
        assert wakes.count == 2  # Core is woken to propose
        assert client.pending() == 3
        taken = queue.take(100, 1 << 20)
        assert taken.transactions == [b"a1", b"a2", b"b1"]
        assert len(taken.tokens) == 2
        assert client.pending() == 0
        await settle()
        # Taken into a block being built is not yet proposed.
        assert not first.done() and not second.done()

        client.on_included(taken.tokens[0], block)
        await asyncio.wait_for(asyncio.shield(first), TIMEOUT_S)
        inclusion = first.result()
        assert inclusion.block == block
        assert not second.done()
        assert not inclusion.outcome.done()
        client.on_included(taken.tokens[1], block)
        second_inclusion = await asyncio.wait_for(second, TIMEOUT_S)
        assert second_inclusion.block == block

        # A token that is not ours, or acknowledged twice, changes nothing.
        client.on_included(object(), block)
        client.on_included(taken.tokens[0], block)

        client.on_committed(other)
        await settle()
        assert not inclusion.outcome.done()
        client.on_committed(commit)
        outcome = await asyncio.wait_for(inclusion.outcome, TIMEOUT_S)
        assert outcome == BlockOutcome(BlockStatus.COMMITTED, commit.commit.index)
        assert await second_inclusion.outcome == outcome
        # Seen again (a replay), or the block's round garbage-collected later: no change.
        client.on_committed(commit)
        client.on_gc_round(block.round + 100)
        assert inclusion.outcome.result() == outcome
    finally:
        await cancel([first, second])


async def test_block_at_or_below_the_gc_round_settles_garbage_collected() -> None:
    queue = TransactionQueue()
    client = TransactionClient(queue, Wakes())
    low = BlockRef(7, 0, BlockDigest(b"\x01" * 32))
    high = BlockRef(9, 0, BlockDigest(b"\x02" * 32))
    tasks = [start_submit(client, [b"low"]), start_submit(client, [b"high"])]
    try:
        await settle()
        taken = queue.take(100, 1 << 20)
        assert len(taken.tokens) == 2
        client.on_included(taken.tokens[0], low)
        client.on_included(taken.tokens[1], high)
        low_inclusion, high_inclusion = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT_S)
        assert (low_inclusion.block, high_inclusion.block) == (low, high)

        client.on_gc_round(6)
        await settle()
        assert not low_inclusion.outcome.done()
        client.on_gc_round(7)  # at the GC round: never committable now
        outcome = await asyncio.wait_for(low_inclusion.outcome, TIMEOUT_S)
        assert outcome.status is BlockStatus.GARBAGE_COLLECTED
        assert outcome.commit_index is None
        await settle()
        assert not high_inclusion.outcome.done()
        client.on_gc_round(10)
        outcome = await asyncio.wait_for(high_inclusion.outcome, TIMEOUT_S)
        assert outcome == BlockOutcome(BlockStatus.GARBAGE_COLLECTED)
    finally:
        await cancel(tasks)


async def test_full_queue_raises_at_once_and_queues_nothing() -> None:
    queue = TransactionQueue(max_pending=3)
    client = TransactionClient(queue, Wakes())
    waiting = start_submit(client, [b"1", b"2"])
    try:
        await settle()
        assert client.pending() == 2
        with pytest.raises(TransactionQueueFullError):
            # Raised, not waited out: the liveness bound turns a wait into a TimeoutError.
            await asyncio.wait_for(client.submit([b"3", b"4"]), TIMEOUT_S)
        assert client.pending() == 2
        # What fits is still accepted.
        fits = start_submit(client, [b"3"])
        await settle()
        assert client.pending() == 3
        assert not fits.done()
        await cancel([fits])
    finally:
        await cancel([waiting])
    assert queue.take(100, 1 << 20).transactions == [b"1", b"2", b"3"]


async def test_close_cancels_pending_outcomes_and_later_submits_raise() -> None:
    queue = TransactionQueue()
    client = TransactionClient(queue, Wakes())
    task = start_submit(client, [b"x"])
    try:
        await settle()
        taken = queue.take(100, 1 << 20)
        client.on_included(taken.tokens[0], BlockRef(3, 0, BlockDigest(b"\x03" * 32)))
        inclusion = await asyncio.wait_for(task, TIMEOUT_S)
        client.close()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(inclusion.outcome, TIMEOUT_S)
        assert inclusion.outcome.cancelled()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(client.submit([b"late"]), TIMEOUT_S)
        assert client.pending() == 0  # the late submission was not queued
    finally:
        await cancel([task])


async def test_close_wakes_submits_still_waiting_for_their_block() -> None:
    # Regression: close() used to cancel only the outcomes of proposed blocks, so a
    # submit() whose batch was still queued hung forever once the authority stopped.
    queue = TransactionQueue()
    client = TransactionClient(queue, Wakes())
    waiting = start_submit(client, [b"never proposed"])
    try:
        await settle()
        assert not waiting.done()
        client.close()  # what ConsensusAuthority.stop() does
        done, _ = await asyncio.wait({waiting}, timeout=TIMEOUT_S)
        assert waiting in done, "submit() still waiting after close()"
        assert waiting.cancelled()
    finally:
        await cancel([waiting])


# --- end to end: four authorities over gRPC ------------------------------------------------

#: Liveness bound for one step of the end-to-end test (not a performance assertion).
E2E_TIMEOUT_S = 20.0


class Consumer:
    """Records the commits one authority hands on."""

    def __init__(self) -> None:
        self.subdags: list[CommittedSubDag] = []

    async def __call__(self, subdag: CommittedSubDag) -> None:
        self.subdags.append(subdag)

    @property
    def indices(self) -> list[int]:
        return [s.commit.index for s in self.subdags]

    @property
    def digests(self) -> list[bytes]:
        return [bytes(s.commit.digest()) for s in self.subdags]

    @property
    def last_index(self) -> int:
        return self.subdags[-1].commit.index if self.subdags else 0


async def eventually(check: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        while not check():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), E2E_TIMEOUT_S)
    except TimeoutError:
        raise AssertionError(f"timed out waiting until {what}") from None


def config(committee: Committee, keys: Sequence[ValidatorKeys], index: int) -> AuthorityConfig:
    return AuthorityConfig(
        committee=committee,
        own_index=index,
        protocol_key=keys[index].protocol,
        network_key=keys[index].network,
        max_backoff_ms=500,
    )


def occurrences(
    consumer: Consumer, txs: Sequence[bytes]
) -> dict[bytes, list[tuple[int, BlockRef]]]:
    """Where each of `txs` was committed: (commit index, block) for every occurrence."""
    wanted = set(txs)
    found: dict[bytes, list[tuple[int, BlockRef]]] = collections.defaultdict(list)
    for subdag in consumer.subdags:
        for block in subdag.blocks:
            for tx in block.transactions:
                if tx in wanted:
                    found[tx].append((subdag.commit.index, block.reference()))
    return found


def assert_contiguous_from(consumer: Consumer, first: int) -> None:
    assert consumer.indices == list(range(first, first + len(consumer.subdags)))


def assert_same_history(consumers: Sequence[Consumer]) -> None:
    """Identical commit digests, in the same order, over the common prefix."""
    common = min(len(c.subdags) for c in consumers)
    assert common > 0
    reference = consumers[0].digests[:common]
    for consumer in consumers[1:]:
        assert consumer.digests[:common] == reference


async def submit_and_commit(
    authority: ConsensusAuthority, txs: Sequence[bytes], author: int
) -> tuple[Inclusion, BlockOutcome]:
    inclusion = await asyncio.wait_for(authority.transaction_client.submit(txs), E2E_TIMEOUT_S)
    assert inclusion.block.author == author
    outcome = await asyncio.wait_for(inclusion.outcome, E2E_TIMEOUT_S)
    assert outcome.status is BlockStatus.COMMITTED
    assert outcome.commit_index is not None and outcome.commit_index >= 1
    return inclusion, outcome


def assert_committed_once(
    consumer: Consumer, txs: Sequence[bytes], inclusion: Inclusion, outcome: BlockOutcome
) -> None:
    found = occurrences(consumer, txs)
    for tx in txs:
        assert found[tx] == [(outcome.commit_index, inclusion.block)], tx


async def test_four_authorities_commit_a_submission_and_a_restart_continues() -> None:
    size = 4
    ports = free_ports(size)
    committee, keys = generate_committee(
        size, consensus_addresses=[f"127.0.0.1:{p}" for p in ports]
    )
    stores = [ConsensusStore.open_memory() for _ in range(size)]
    consumers = [Consumer() for _ in range(size)]
    authorities: list[ConsensusAuthority | None] = [None] * size
    try:
        for i in range(size):
            authority = ConsensusAuthority(config(committee, keys, i), stores[i], consumers[i])
            authorities[i] = authority
            await authority.start()
        live = [a for a in authorities if a is not None]

        # A batch through authority 0: our block, committed, delivered once everywhere.
        txs = [f"e2e-first-{i}".encode() for i in range(20)]
        inclusion, outcome = await submit_and_commit(live[0], txs, author=0)
        index = outcome.commit_index
        assert index is not None
        await eventually(
            lambda: all(c.last_index >= index for c in consumers), f"all reach commit {index}"
        )
        for consumer in consumers:
            assert_contiguous_from(consumer, 1)
            assert_committed_once(consumer, txs, inclusion, outcome)
        assert_same_history(consumers)
        assert not any(a.failure for a in live)

        # Authority 2 stops; the other three keep committing.
        stopped = authorities[2]
        assert stopped is not None
        authorities[2] = None
        await stopped.stop()
        seen = len(consumers[2].subdags)
        assert seen >= index
        assert_contiguous_from(consumers[2], 1)
        target = max(c.last_index for c in consumers) + 3
        await eventually(
            lambda: all(consumers[i].last_index >= target for i in (0, 1, 3)),
            f"three authorities reach commit {target}",
        )
        second_txs = [f"e2e-second-{i}".encode() for i in range(10)]
        assert authorities[1] is not None
        second = await submit_and_commit(authorities[1], second_txs, author=1)

        # Restarted on the same store, saying it processed `seen` commits: it continues
        # from seen + 1 (replayed from its store, then caught up), with no gap, no repeat.
        restarted_consumer = Consumer()
        restarted = ConsensusAuthority(
            config(committee, keys, 2), stores[2], restarted_consumer, last_processed_commit=seen
        )
        authorities[2] = restarted
        await restarted.start()
        target = max(c.last_index for c in consumers) + 3
        await eventually(
            lambda: restarted_consumer.last_index >= target,
            f"the restarted authority reaches commit {target}",
        )
        assert_contiguous_from(restarted_consumer, seen + 1)
        # With four again, a batch through the restarted authority is committed.
        third_txs = [f"e2e-third-{i}".encode() for i in range(10)]
        third = await submit_and_commit(restarted, third_txs, author=2)
        third_index = third[1].commit_index
        assert third_index is not None
        others = [consumers[0], consumers[1], consumers[3]]
        await eventually(
            lambda: all(c.last_index >= third_index for c in [*others, restarted_consumer]),
            f"all reach commit {third_index}",
        )

        combined = Consumer()
        combined.subdags = consumers[2].subdags + restarted_consumer.subdags
        assert_contiguous_from(combined, 1)
        histories = [*others, combined]
        assert_same_history(histories)
        for consumer in histories:
            assert_committed_once(consumer, txs, inclusion, outcome)
            assert_committed_once(consumer, second_txs, *second)
            assert_committed_once(consumer, third_txs, *third)
        assert not any(a.failure for a in authorities if a is not None)
    finally:
        for authority in authorities:
            if authority is not None:
                with contextlib.suppress(Exception):
                    await authority.stop()
        for store in stores:
            store.close()
