"""Pruning the consensus store, and resuming consensus at a commit a node did not make
(`consensus.history`): the installed history must leave the node electing the leaders
and making the commits its peers make."""

from __future__ import annotations

import dataclasses

import pytest

from soma.consensus.history import (
    ConsensusHistoryError,
    History,
    history_start,
    install_history,
    verify_chain,
)
from soma.consensus.parameters import ConsensusConfigError, ConsensusParameters
from soma.types.consensus.commit_ref import CommitRef
from soma.types.digests import CommitDigest
from tests.consensus.core_harness import Cluster, Node

# Short schedule windows and GC depth, so a run of a few hundred rounds spans many.
PARAMETERS = ConsensusParameters(
    commits_per_schedule_update=5, gc_depth=6, retained_commits=2 * (3 * 5 + 7)
)
LAGGING = 3


def _history(source: Node, target: int, first: int) -> History:
    """What `fetch_history` would get from `source`: commits first..target, blocks."""
    commits = list(source.store.scan_commits(first, target))
    history = []
    for commit in commits:
        blocks = source.store.read_blocks(list(commit.blocks))
        assert all(b is not None for b in blocks)
        history.append((commit, [b for b in blocks if b is not None]))
    return history


def test_a_node_resumed_from_a_peers_history_elects_and_commits_as_its_peers_do() -> None:
    cluster = Cluster(parameters=PARAMETERS)
    cluster.run_until_round(120, down=frozenset({LAGGING}))
    source, lagging = cluster.nodes[0], cluster.nodes[LAGGING]
    last = source.core.dag.last_commit
    assert last is not None and last.index > 3 * PARAMETERS.history_commits
    first = history_start(lagging.context, last.index)
    history = _history(source, last.index, first)
    verify_chain([c for c, _ in history], CommitRef(last.index, last.digest()))

    install_history(lagging.store, lagging.context, history)
    lagging.restart(cluster.now_ms)
    assert lagging.store.last_commit_info() == source.store.last_commit_info()
    info_index = source.store.last_commit_info()[0]  # type: ignore[index]
    assert lagging.store.commit_info_before(info_index) == source.store.commit_info_before(
        info_index
    )
    rounds = range(last.leader.round, last.leader.round + 30)
    assert [lagging.core.schedule.leaders(r) for r in rounds] == [
        source.core.schedule.leaders(r) for r in rounds
    ]
    # What block sync would bring it: the DAG above its GC round.
    above = [
        b
        for b in source.store.scan_blocks_from(lagging.core.dag.gc_round + 1)
        if not lagging.core.dag.contains(b.reference())
    ]
    lagging.record(lagging.core.add_blocks(above, cluster.now_ms))
    lagging.committed.clear()
    cluster.run_until_round(source.core.last_proposed_round + 40)
    # It commits exactly what its peers commit after the commit it resumed at.
    made = {s.commit.index: bytes(s.commit.digest()) for s in lagging.committed}
    assert min(made) == last.index + 1 and len(made) >= 10
    stored = {c.index: bytes(c.digest()) for c in source.store.scan_commits(last.index + 1)}
    assert all(stored[i] == d for i, d in made.items())
    # And it proposes: its blocks are in the others' DAG again.
    assert source.core.dag.last_blocks()[LAGGING].round > last.leader.round


def test_a_forged_or_broken_history_is_refused() -> None:
    cluster = Cluster(parameters=PARAMETERS)
    cluster.run_until_round(40)
    source = cluster.nodes[0]
    commits = list(source.store.scan_commits(1))
    last = commits[-1]
    target = CommitRef(last.index, last.digest())
    verify_chain(commits, target)
    with pytest.raises(ConsensusHistoryError, match="not at"):
        verify_chain(commits, CommitRef(last.index, CommitDigest(b"\x01" * 32)))
    with pytest.raises(ConsensusHistoryError, match="follows"):
        verify_chain(commits[:3] + commits[4:], target)
    forged = dataclasses.replace(commits[5], timestamp_ms=commits[5].timestamp_ms + 1)
    with pytest.raises(ConsensusHistoryError, match="does not chain"):
        verify_chain([*commits[:5], forged, *commits[6:]], target)
    with pytest.raises(ConsensusHistoryError, match="not at"):
        verify_chain(commits[:-1], target)


def test_pruning_keeps_recovery_and_every_authoritys_latest_block() -> None:
    cluster = Cluster(parameters=PARAMETERS)
    cluster.run_until_round(5)
    cluster.run_until_round(100, down=frozenset({LAGGING}))
    node = cluster.nodes[0]
    dag = node.core.dag
    keep_from = dag.last_commit_index - PARAMETERS.retained_commits + 1
    below = node.store.commit(keep_from - 1)
    assert below is not None
    blocks_below = below.leader.round - PARAMETERS.gc_depth
    latest = dag.last_blocks()
    node.store.prune(keep_from, blocks_below, keep_from, latest)
    assert node.store.first_commit_index() == keep_from
    assert all(b.round >= blocks_below or b in latest for b in node.store.scan_blocks_from(0))
    # The lagging authority's last block (long below the cut) is still there.
    assert 0 < latest[LAGGING].round < blocks_below
    assert node.store.last_block_of(LAGGING) == latest[LAGGING]
    # Every block a kept commit names is kept.
    for commit in node.store.scan_commits(keep_from):
        assert all(b is not None for b in node.store.read_blocks(list(commit.blocks)))
    # Recovery from the pruned store goes on making the commits the others make.
    before = len(node.committed)
    node.restart(cluster.now_ms)
    cluster.run_until_round(node.core.last_proposed_round + 20, down=frozenset({LAGGING}))
    other = cluster.nodes[1]
    made = {s.commit.index: bytes(s.commit.digest()) for s in node.committed[before:]}
    by_index = {s.commit.index: bytes(s.commit.digest()) for s in other.committed}
    assert made and all(by_index[i] == d for i, d in made.items())


def test_the_retention_must_cover_twice_the_history_a_node_resumes_from() -> None:
    with pytest.raises(ConsensusConfigError, match="retained_commits must be at least"):
        ConsensusParameters(retained_commits=100)
    assert ConsensusParameters().retained_commits >= 2 * ConsensusParameters().history_commits
