"""DagState and the consensus store: buffered writes, garbage collection and eviction,
reads that fall through to the store, and rebuilding from the store."""

from __future__ import annotations

import itertools

from soma.consensus.context import Context
from soma.consensus.dag_state import DagState
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.store import ConsensusStore
from soma.types.consensus.block import Block, SignedBlock, Slot
from tests.consensus.core_harness import Cluster


def test_writes_are_buffered_until_flush() -> None:
    cluster = Cluster()
    node = cluster.nodes[0]
    context, key = node.context, node.key
    store = ConsensusStore.open_memory()
    dag = DagState(context, store)
    genesis = [b.reference() for b in dag.blocks_at_round(0)]
    block = SignedBlock.sign(Block(0, 1, 0, 5, tuple(genesis), (), ()), key)
    dag.accept_block(block)
    assert dag.contains(block.reference())
    assert dag.has_unflushed()
    assert not store.contains_block(block.reference())
    # A node rebuilt now has lost the unflushed block: nothing was promised for it.
    assert not DagState(context, store).contains(block.reference())
    dag.flush()
    assert not dag.has_unflushed()
    assert store.contains_block(block.reference())
    rebuilt = DagState(context, store)
    assert rebuilt.contains(block.reference())
    assert rebuilt.last_block_of(0) == block


def test_accepting_twice_writes_once() -> None:
    cluster = Cluster()
    cluster.run_until_round(3)
    node = cluster.nodes[0]
    dag = node.core.dag
    block = dag.last_block_of(1)
    dag.accept_block(block)
    assert not dag.has_unflushed()


def test_gc_round_follows_last_committed_leader() -> None:
    params = ConsensusParameters(gc_depth=6)
    cluster = Cluster(parameters=params)
    cluster.run_until_round(30)
    dag = cluster.nodes[0].core.dag
    last = dag.last_commit
    assert last is not None
    assert dag.gc_round == last.leader.round - 6
    # Rounds below the GC round left memory, except each author's latest block ...
    assert dag.blocks_at_round(dag.gc_round - 1) == []
    assert all(b.round >= dag.gc_round for b in dag.last_blocks())
    # ... but the store still serves them to peers.
    old = next(iter(dag.store.scan_blocks_from(2)))
    assert old.round == 2
    assert dag.get_blocks([old.reference()]) == [old]


def test_own_blocks_after_reads_memory_and_store() -> None:
    params = ConsensusParameters(gc_depth=6)
    cluster = Cluster(parameters=params)
    cluster.run_until_round(30)
    dag = cluster.nodes[0].core.dag
    # From memory (above the GC round).
    recent = dag.own_blocks_after(1, dag.gc_round + 2, 3)
    assert [b.round for b in recent] == [dag.gc_round + 3 + i for i in range(3)]
    assert all(b.author == 1 for b in recent)
    # From the store (below the GC round), capped.
    old = dag.own_blocks_after(1, 0, 5)
    assert [b.round for b in old] == [1, 2, 3, 4, 5]
    assert all(b.author == 1 for b in old)
    everything = dag.own_blocks_after(1, 0, 1_000)
    assert [b.round for b in everything] == list(range(1, dag.last_block_of(1).round + 1))


def test_ancestors_at_round() -> None:
    cluster = Cluster()
    cluster.run_until_round(6)
    dag = cluster.nodes[0].core.dag
    tip = dag.last_block_of(0)
    found = dag.ancestors_at_round(tip, tip.round - 2)
    refs = [b.reference() for b in found]
    assert refs == sorted(refs)
    assert {b.round for b in found} == {tip.round - 2}
    # With all links up, a block reaches every block two rounds down.
    assert {b.author for b in found} == {0, 1, 2, 3}


def test_store_last_block_of_and_commit_info() -> None:
    params = ConsensusParameters(commits_per_schedule_update=4)
    cluster = Cluster(parameters=params)
    cluster.run_until_round(15)
    node = cluster.nodes[0]
    store = node.store
    for author in range(4):
        assert store.last_block_of(author) == node.core.dag.last_block_of(author)
    info = store.last_commit_info()
    assert info is not None and info[0] % 4 == 0
    previous = store.commit_info_before(info[0])
    assert previous is not None and previous[0] == info[0] - 4
    assert store.commit_info_before(4) is None
    assert store.commit_info_before(0) is None


def test_commits_chain_in_the_store() -> None:
    cluster = Cluster()
    cluster.run_until_round(12)
    store = cluster.nodes[1].store
    commits = list(store.scan_commits(1))
    assert [c.index for c in commits] == list(range(1, len(commits) + 1))
    for previous, commit in itertools.pairwise(commits):
        assert commit.previous_digest == previous.digest()
        assert commit.timestamp_ms >= previous.timestamp_ms
    assert list(store.scan_commits(2, 3)) == commits[1:3]
    assert list(store.scan_commits_backward()) == commits[::-1]


def test_rebuilt_dag_marks_committed_blocks() -> None:
    params = ConsensusParameters(gc_depth=6)
    cluster = Cluster(parameters=params)
    cluster.run_until_round(20)
    node = cluster.nodes[0]
    before = node.core.dag
    rebuilt = DagState(Context(cluster.committee, 0, params), node.store)
    last = before.last_commit
    assert last is not None
    for ref in last.blocks:
        assert rebuilt.is_committed(ref)
    for round in range(rebuilt.gc_round, rebuilt.highest_accepted_round + 1):
        for author in range(4):
            mine = [b.reference() for b in rebuilt.blocks_at_slot(Slot(round, author))]
            theirs = [b.reference() for b in before.blocks_at_slot(Slot(round, author))]
            assert mine == theirs
            for ref in mine:
                assert rebuilt.is_committed(ref) == before.is_committed(ref)
