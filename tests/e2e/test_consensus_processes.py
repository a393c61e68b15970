"""Validators as separate OS processes over gRPC on loopback: they commit and agree; one
killed with SIGKILL under load and restarted converges; one whose store was wiped learns
its last round from peers before proposing; one cut off (its links cut) catches up through the
commit syncer. Afterwards no authority has signed two blocks for one round in any store."""

from __future__ import annotations

import shutil

from soma.bench.cluster import ConsensusCluster
from tests.e2e.conftest import MakeCluster
from tests.e2e.harness import (
    Load,
    assert_no_equivocation,
    assert_same_commits,
    commit_index,
    rounds_of,
    wait_all_commit,
    wait_guard_done,
)

ALL = [0, 1, 2, 3]


async def _stop_and_check_stores(cluster: ConsensusCluster) -> None:
    await cluster.stop()
    assert_no_equivocation([cluster.store_path(i) for i in range(cluster.size)])


async def test_four_validators_commit_the_same_sequence(make_cluster: MakeCluster) -> None:
    cluster = await make_cluster(4)
    load = Load(cluster)
    load.start()
    await wait_all_commit(cluster, ALL, 30)
    await load.stop()
    top = await assert_same_commits(cluster, ALL)
    assert top >= 30
    assert load.counters.committed > 0
    assert load.counters.failed == 0
    stats = await cluster.stats()
    assert all(s.recovered_own_round == 0 for s in stats)  # fresh stores: guard ran, found 0
    assert all(sum(s.bad_messages) == 0 for s in stats)
    await _stop_and_check_stores(cluster)


async def test_sigkilled_validator_restarts_converges_and_keeps_committing(
    make_cluster: MakeCluster,
) -> None:
    cluster = await make_cluster(4)
    load = Load(cluster)
    load.start()
    await wait_all_commit(cluster, ALL, 10)
    before = await cluster.node_stats(3)
    cluster.crash(3)
    # One of four down: the other three still commit, under load.
    at_crash = await commit_index(cluster, 0)
    await wait_all_commit(cluster, [0, 1, 2], at_crash + 15)
    committed_while_down = load.counters.committed
    await cluster.restart(3)
    # It recovered its DAG and commits from its store; peers confirm its last round.
    learned = await wait_guard_done(cluster, 3)
    assert learned <= before.last_proposed_round + 3
    restarted = await cluster.node_stats(3)
    assert restarted.last_commit_index >= before.last_commit_index
    assert restarted.last_proposed_round >= before.last_proposed_round
    target = await commit_index(cluster, 0) + 10
    await wait_all_commit(cluster, ALL, target)
    after = await cluster.node_stats(3)
    assert after.last_proposed_round > restarted.last_proposed_round  # proposing again
    await load.stop()
    assert committed_while_down > 0
    await assert_same_commits(cluster, ALL)
    await _stop_and_check_stores(cluster)


async def test_wiped_validator_learns_its_last_round_before_proposing(
    make_cluster: MakeCluster,
) -> None:
    cluster = await make_cluster(4)
    await wait_all_commit(cluster, ALL, 10)
    cluster.crash(3)
    proposed = rounds_of(cluster.store_path(3), 3)
    last_round = proposed[-1]
    shutil.rmtree(cluster.store_path(3))
    await cluster.restart(3)
    learned = await wait_guard_done(cluster, 3)
    # Peers hold our blocks up to at most our last round, and at least the ones they
    # used as parents a few rounds before it.
    assert last_round - 5 <= learned <= last_round
    target = await commit_index(cluster, 0) + 10
    await wait_all_commit(cluster, ALL, target)
    await assert_same_commits(cluster, ALL)
    # The store was wiped, so every block of 3 it now holds was signed after the restart
    # (or fetched from peers): none in the rounds it had signed before may differ.
    await _stop_and_check_stores(cluster)


async def test_cut_off_validator_catches_up_through_the_commit_syncer(
    make_cluster: MakeCluster,
) -> None:
    cluster = await make_cluster(4, links=True)
    load = Load(cluster)
    load.start()
    await wait_all_commit(cluster, ALL, 5)
    await cluster.cut_off(3)
    at_cut = await commit_index(cluster, 3)
    # The others go on, far past its garbage-collection depth; it is stuck meanwhile.
    await wait_all_commit(cluster, [0, 1, 2], at_cut + 120, timeout_s=90)
    assert await commit_index(cluster, 3) <= at_cut + 2
    await cluster.cut_off(3, cut=False)
    target = await commit_index(cluster, 0) + 5
    await wait_all_commit(cluster, ALL, target, timeout_s=90)
    stats = await cluster.node_stats(3)
    assert stats.synced_commits > 0, "caught up without the commit syncer"
    await load.stop()
    await assert_same_commits(cluster, ALL)
    await _stop_and_check_stores(cluster)
