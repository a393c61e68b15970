"""Core: proposing (quorum, leaders or timeout, minimum delay), persisting before
returning, commit votes, payload limits, and recovery from the store."""

from __future__ import annotations

from soma.consensus.parameters import ConsensusParameters
from tests.consensus.core_harness import Cluster, commit_digests


def test_genesis_start_proposes_round_one_at_once() -> None:
    cluster = Cluster()
    node = cluster.nodes[0]
    out = node.core.tick(0)
    assert [b.round for b in out.proposed] == [1]
    block = out.proposed[0]
    # It links every genesis block, its own first.
    assert block.ancestors[0].author == 0
    assert sorted(a.author for a in block.ancestors) == [0, 1, 2, 3]
    assert all(a.round == 0 for a in block.ancestors)


def test_own_block_is_persisted_before_it_is_returned() -> None:
    cluster = Cluster()
    for _ in range(8):
        for block in cluster.step(60):
            owner = cluster.nodes[block.author]
            assert owner.store.contains_block(block.reference())
    # Commits are flushed before they are handed on, too.
    node = cluster.nodes[0]
    assert node.committed
    assert node.store.last_commit() == node.committed[-1].commit


def test_no_proposal_without_quorum_of_previous_round() -> None:
    cluster = Cluster()
    cluster.step(60)  # round 1 by everyone
    node = cluster.nodes[0]
    assert node.core.last_proposed_round == 1
    # Nodes 1 and 2 are cut off from now on: node 0 sees only node 3's round-2 block
    # plus its own: 2 of 4 is not a quorum.
    cluster.step(60, down=frozenset({1, 2}))
    assert node.core.last_proposed_round == 2
    for t in range(10):
        out = node.core.tick(cluster.now_ms + 1_000 * (t + 1))
        assert out.proposed == []
    assert node.core.clock.round == 2


def test_waits_for_leader_then_times_out() -> None:
    params = ConsensusParameters(leader_timeout_ms=250, min_round_delay_ms=0)
    cluster = Cluster(parameters=params)
    round1 = [n.core.tick(0).proposed[0] for n in cluster.nodes]
    leader_author = cluster.nodes[0].core.schedule.leaders(2)[0]
    me = next(i for i in range(4) if i != leader_author)
    node = cluster.nodes[me]
    now = 10
    round2 = {}
    for n in cluster.nodes:
        i = n.context.own_index
        proposed = n.core.add_blocks([b for b in round1 if b.author != i], now).proposed
        assert [b.round for b in proposed] == [2]
        round2[i] = proposed[0]
    # `me` receives the round-2 blocks of everyone but the round-2 leader.
    blocks = [b for i, b in round2.items() if i not in (me, leader_author)]
    out = node.core.add_blocks(blocks, now)
    # Quorum of round 2 (3 of 4) is there, but not its leader: wait.
    assert node.core.clock.round == 3
    assert out.proposed == []
    assert node.core.next_deadline_ms() == now + 250
    assert node.core.tick(now + 249).proposed == []
    late = node.core.tick(now + 250).proposed
    assert [b.round for b in late] == [3]
    # The round-3 block links what was there: not the missing leader.
    assert leader_author not in {a.author for a in late[0].ancestors if a.round == 2}


def test_proposes_at_once_when_leader_is_present() -> None:
    params = ConsensusParameters(leader_timeout_ms=10_000, min_round_delay_ms=0)
    cluster = Cluster(parameters=params)
    cluster.run_until_round(6, dt_ms=1)
    # With a 10 s timeout, six rounds in a few ms means nobody waited for a timeout.
    assert cluster.now_ms < 100


def test_minimum_round_delay() -> None:
    params = ConsensusParameters(min_round_delay_ms=50, leader_timeout_ms=1_000)
    cluster = Cluster(parameters=params)
    node = cluster.nodes[0]
    assert [b.round for b in node.core.tick(0).proposed] == [1]
    others = [n.core.tick(0).proposed[0] for n in cluster.nodes[1:]]
    # Round 1 complete at t=10, but the last proposal was at t=0.
    assert node.core.add_blocks(others, 10).proposed == []
    assert node.core.next_deadline_ms() == 50
    assert node.core.tick(49).proposed == []
    assert [b.round for b in node.core.tick(50).proposed] == [2]


def test_commit_votes_go_into_the_next_block() -> None:
    cluster = Cluster()
    cluster.run_until_round(12)
    node = cluster.nodes[0]
    voted = [v for b in node.proposed for v in b.block.commit_votes]
    committed = [s.commit.reference() for s in node.committed]
    # Every commit but those made after the last proposal is voted exactly once, in order.
    assert voted == committed[: len(voted)]
    assert len(voted) >= len(committed) - 2
    # A block's votes are commits made before it was proposed.
    for block in node.proposed:
        for vote in block.block.commit_votes:
            assert vote.index <= node.core.dag.last_commit_index


def test_block_payload_limits() -> None:
    params = ConsensusParameters(max_block_transactions=5, max_block_bytes=350)
    cluster = Cluster(parameters=params)
    node = cluster.nodes[0]
    for i in range(20):
        node.queue.submit(bytes([i]) * 100)
    block = node.core.tick(0).proposed[0]
    # 5 transactions would be 500 bytes: the byte limit (350) allows 3.
    assert list(block.transactions) == [bytes([i]) * 100 for i in range(3)]
    assert len(node.queue) == 17


def test_block_transaction_count_limit() -> None:
    params = ConsensusParameters(max_block_transactions=4)
    cluster = Cluster(parameters=params)
    node = cluster.nodes[0]
    node.queue.submit_many(bytes([i]) for i in range(10))
    block = node.core.tick(0).proposed[0]
    assert list(block.transactions) == [bytes([i]) for i in range(4)]


def test_transactions_are_committed_in_order_once() -> None:
    cluster = Cluster()
    submitted = [f"tx-{i}".encode() for i in range(30)]
    cluster.nodes[2].queue.submit_many(submitted)
    cluster.run_until_round(12)
    for node in cluster.nodes:
        seen = [tx for s in node.committed for b in s.blocks for tx in b.transactions]
        assert seen == submitted


def test_all_nodes_commit_the_same_sequence() -> None:
    cluster = Cluster()
    cluster.run_until_round(15)
    sequences = [commit_digests(n) for n in cluster.nodes]
    shortest = min(len(s) for s in sequences)
    assert shortest >= 12
    assert all(s[:shortest] == sequences[0][:shortest] for s in sequences)
    indices = [s.commit.index for s in cluster.nodes[0].committed]
    assert indices == list(range(1, len(indices) + 1))


def test_restart_never_proposes_at_or_below_last_proposed_round() -> None:
    cluster = Cluster()
    cluster.run_until_round(8)
    node = cluster.nodes[1]
    last = node.core.last_proposed_round
    last_block = node.proposed[-1]
    node.restart(cluster.now_ms)
    assert node.core.last_proposed_round == last
    assert node.core.dag.last_block_of(1) == last_block
    # Whatever it receives or however long it waits, its next block is above `last`.
    out = node.core.tick(cluster.now_ms + 10_000)
    assert all(b.round > last for b in out.proposed)
    cluster.run_until_round(last + 4)
    rounds = [b.round for b in node.proposed]
    assert rounds == sorted(set(rounds)), "two blocks for one round"


def test_restart_after_every_step_continues_exactly() -> None:
    """A node restarted from its store after every step commits exactly what a node
    that never restarted commits."""
    cluster = Cluster()
    restarted = cluster.nodes[3]
    for _ in range(30):
        cluster.step(60)
        restarted.restart(cluster.now_ms)
    reference = commit_digests(cluster.nodes[0])
    mine = commit_digests(restarted)
    assert len(mine) >= 20
    assert mine == reference[: len(mine)]
    rounds = [b.round for b in restarted.proposed]
    assert rounds == sorted(set(rounds))


def test_restart_rebuilds_commit_state() -> None:
    params = ConsensusParameters(gc_depth=6, commits_per_schedule_update=5)
    cluster = Cluster(parameters=params)
    cluster.run_until_round(25)
    node = cluster.nodes[2]
    before = node.core.dag
    node.restart(cluster.now_ms)
    after = node.core.dag
    assert after.last_commit == before.last_commit
    assert after.gc_round == before.gc_round > 0
    assert after.last_committed_rounds == before.last_committed_rounds
    assert after.last_commit_info == before.last_commit_info
    assert after.highest_accepted_round == before.highest_accepted_round
    for author in range(4):
        assert after.last_block_of(author) == before.last_block_of(author)
    # Same leader schedule after recovery (scores restored).
    for round in range(20, 40):
        assert node.core.schedule.leaders(round) == cluster.nodes[0].core.schedule.leaders(round)
    # And it keeps committing the same chain.
    cluster.run_until_round(40)
    reference = commit_digests(cluster.nodes[0])
    assert commit_digests(node) == reference[: len(commit_digests(node))]
    assert len(commit_digests(node)) >= 35


def test_restart_from_empty_store_starts_at_genesis() -> None:
    cluster = Cluster()
    node = cluster.nodes[0]
    node.restart(0)
    assert node.core.last_proposed_round == 0
    assert node.core.dag.last_commit is None
    assert [b.round for b in node.core.tick(0).proposed] == [1]
