"""The rules a node follows when it is behind or restarted: overdue fetches expire even
while block fetching is paused, the proposal floor and hold, a block of ours from a peer
raising the floor, whole-run checks of certified commits, fetch answers bounded by bytes
and the GC round, subscription batches that never split a round, and the signed-block
byte layout the signature check reads in place."""

from __future__ import annotations

import random

import pytest

from soma.consensus.context import Context
from soma.consensus.dag_builder import DagBuilder
from soma.consensus.dag_state import DagState
from soma.consensus.errors import CertifiedCommitError
from soma.consensus.local_committee import build_committee
from soma.consensus.messages import FetchBlocksRequest
from soma.consensus.protocol import ConsensusProtocol
from soma.consensus.store import ConsensusStore
from soma.consensus.synchronizer import blocks_for_fetch
from soma.consensus.transaction import TransactionQueue
from soma.types.consensus.block import Block, BlockRef, SignedBlock
from soma.types.digests import BlockDigest
from tests.consensus.core_harness import Cluster


def _protocol(index: int = 0) -> tuple[ConsensusProtocol, list[object]]:
    committee, keys = build_committee(4, seed=5)
    protocol = ConsensusProtocol(
        Context(committee, index),
        ConsensusStore.open_memory(),
        keys[index],
        TransactionQueue(),
        random.Random(index),
        0,
        commit_sync_lag=20,
    )
    return protocol, list(keys)


def _missing_ref() -> BlockRef:
    return BlockRef(7, 2, BlockDigest(b"\x07" * 32))


def test_overdue_fetches_expire_while_block_fetching_is_paused() -> None:
    protocol, _ = _protocol()
    protocol.sync.set_missing([_missing_ref()], hint=2)
    requests = protocol.sync.poll(0)
    assert len(requests) == 1
    deadline = protocol.sync.next_deadline_ms()
    assert deadline is not None
    # Now the node lags: no new fetches, but the overdue one must still expire, or its
    # deadline would stay in the past and the timer would fire again at once, forever.
    protocol.block_fetching_paused = lambda: True  # type: ignore[method-assign]
    out = protocol.tick(deadline)
    assert not any(isinstance(m, FetchBlocksRequest) for _, m in out.sends)
    assert protocol.sync.next_deadline_ms() is None
    assert protocol.next_deadline_ms(deadline) > deadline


def test_a_stalled_commit_syncer_lets_block_fetching_resume() -> None:
    protocol, _ = _protocol()
    protocol.is_commit_lagging = lambda: True  # type: ignore[method-assign]
    assert protocol.block_fetching_paused()
    protocol.commit_sync_stalled = True
    assert not protocol.block_fetching_paused()


def test_held_proposals_and_the_floor() -> None:
    cluster = Cluster()
    node = cluster.nodes[0]
    node.core.hold_proposals()
    for _ in range(40):
        cluster.step(60)
    # The others went on (three of four are a quorum); it received their blocks but
    # proposed nothing.
    assert min(n.core.last_proposed_round for n in cluster.nodes[1:]) >= 5
    assert node.core.last_proposed_round == 0
    floor = node.core.dag.highest_accepted_round + 10
    node.core.resume_proposals(above_round=floor)
    for _ in range(400):
        cluster.step(60)
        if node.core.last_proposed_round:
            break
    assert node.core.last_proposed_round > floor
    assert all(b.round > floor for b in node.proposed)


def test_a_block_of_ours_from_a_peer_raises_the_floor() -> None:
    protocol, keys = _protocol(index=1)
    genesis = [g.reference() for g in protocol.dag.blocks_at_round(0)]
    ancestors = tuple(sorted(genesis, key=lambda r: r.author != 1))
    ours = SignedBlock.sign(Block(0, 1, 1, 0, ancestors, (), ()), keys[1])  # type: ignore[arg-type]
    # Pretend the store lost it: it arrives in a fetch answer from peer 2.
    protocol.receive_fetched(2, 99, [ours.to_bytes()], 10)
    assert protocol.core._refresh_last_proposed() >= 1
    out = protocol.tick(10_000)
    assert all(b.round > 1 for b in out.proposed)


def test_certified_commits_that_do_not_chain_change_nothing() -> None:
    cluster = Cluster()
    cluster.run_until_round(12)
    source = cluster.nodes[0]
    commits = list(source.store.scan_commits(1))
    assert len(commits) >= 3
    fresh_cluster = Cluster()
    target = fresh_cluster.nodes[0].core
    blocks = {b.reference(): b for b in source.core.dag.store.scan_blocks_from(1)}
    with_blocks = [(c, [blocks[r] for r in c.blocks]) for c in commits[:3]]
    # Skip the second: the third does not follow the first.
    with pytest.raises(CertifiedCommitError):
        target.add_certified_commits([with_blocks[0], with_blocks[2]], 0)
    assert target.dag.last_commit_index == 0
    assert not target.dag.has_unflushed()
    out = target.add_certified_commits(with_blocks, 0)
    assert [s.commit.index for s in out.committed[:3]] == [1, 2, 3]


def _cluster_with_payload(rounds: int, tx_bytes: int = 0) -> Cluster:
    cluster = Cluster()
    if tx_bytes:
        for node in cluster.nodes:
            for i in range(rounds):
                node.queue.submit_batch([bytes([i]) * tx_bytes])
    cluster.run_until_round(rounds)
    return cluster


def test_fetch_answers_respect_the_byte_budget_but_always_carry_one_block() -> None:
    dag = _cluster_with_payload(8, tx_bytes=10_000).nodes[0].core.dag
    tip = dag.last_block_of(1).reference()
    everything = blocks_for_fetch(dag, [tip], [0, 0, 0, 0], cap=1_000)
    assert len(everything) > 10
    budget = sum(len(b.to_bytes()) for b in everything) // 2
    capped = blocks_for_fetch(dag, [tip], [0, 0, 0, 0], cap=1_000, max_bytes=budget)
    assert 1 < len(capped) < len(everything)
    assert sum(len(b.to_bytes()) for b in capped) <= budget
    assert tip in [b.reference() for b in capped]
    tiny = blocks_for_fetch(dag, [tip], [0, 0, 0, 0], cap=1_000, max_bytes=1)
    assert [b.reference() for b in tiny] == [tip]


def test_fetch_answers_add_no_ancestors_below_the_gc_round() -> None:
    dag = _cluster_with_payload(10).nodes[0].core.dag
    dag._gc_round = 5  # as after commits far ahead of the asker
    tip = dag.last_block_of(1).reference()
    answer = blocks_for_fetch(dag, [tip], [0, 0, 0, 0], cap=1_000)
    assert min(b.round for b in answer) == 6
    # Asked for by reference, an old block still comes (from memory or the store).
    old = dag.blocks_at_round(2)[0].reference()
    assert [b.reference() for b in blocks_for_fetch(dag, [old], [0, 0, 0, 0], 10)] == [old]


def test_subscription_batches_never_split_a_round() -> None:
    committee, _ = build_committee(4, seed=5)
    dag = DagState(Context(committee, 0), ConsensusStore.open_memory())
    builder = DagBuilder(4)
    for round in (1, 2, 3):
        dag.accept_blocks(builder.layer(round))
    # Authority 1 equivocates in round 4: two blocks.
    dag.accept_blocks(builder.layer(4, authors=[0, 2, 3]))
    parents = [r for r in builder.last_ancestors]
    for variant in (0, 1):
        dag.accept_block(builder.add_block(4, 1, parents, variant=variant))
    batch = dag.own_blocks_after(1, 3, limit=1)
    assert [b.round for b in batch] == [4, 4]


def test_signed_block_bytes_are_the_block_then_the_signature() -> None:
    _, keys = _protocol()
    block = Block(0, 3, 0, 12, (), (b"a" * 300, b"b"), ())
    signed = SignedBlock.sign(block, keys[0])  # type: ignore[arg-type]
    raw = signed.to_bytes()
    assert raw == block.to_bytes() + signed.signature
    decoded = SignedBlock.from_bytes(raw)
    assert decoded == signed and decoded.to_bytes() == raw
    committee, _ = build_committee(4, seed=5)
    decoded.verify_signature(committee.members[0].protocol_key)
