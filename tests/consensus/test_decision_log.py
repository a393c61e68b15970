"""The decision log and the recent-DAG snapshot: every decided leader slot is recorded
with how it was decided and the commit it led, the log stays bounded, a restarted Core
restores its recent commits, certified commits are told apart, and a snapshot of the
last rounds holds their blocks and leader slots (undecided above the last decided)."""

from __future__ import annotations

import pytest

from soma.consensus import recent_dag as recent_dag_module
from soma.consensus.committer.status import Decision, LeaderStatus
from soma.consensus.decision_log import DecisionLog, DecisionSource
from soma.consensus.recent_dag import MAX_ROUNDS, recent_dag
from soma.types.consensus.block import BlockRef, Slot
from soma.types.consensus.commit import Commit, CommittedSubDag
from soma.types.digests import BlockDigest, CommitDigest
from tests.consensus.core_harness import Cluster


def _ref(round: int, author: int) -> BlockRef:
    return BlockRef(round, author, BlockDigest(bytes([round % 256, author]) + bytes(30)))


def _commit(index: int, leader: BlockRef) -> Commit:
    return Commit(index, CommitDigest.zero(), 1000 + index, leader, (leader,))


def _subdag(index: int, leader: BlockRef) -> CommittedSubDag:
    return CommittedSubDag(_commit(index, leader), leader, (), 1000 + index)


class _Block:
    """What the log reads of a committed leader block: its reference."""

    def __init__(self, ref: BlockRef) -> None:
        self._ref = ref

    def reference(self) -> BlockRef:
        return self._ref


def _committed(ref: BlockRef, direct: bool) -> LeaderStatus:
    return LeaderStatus(ref.slot(), Decision.COMMIT, _Block(ref), direct)  # type: ignore[arg-type]


def test_commits_and_skips_are_recorded_with_their_source_and_commit() -> None:
    log = DecisionLog()
    a, b = _ref(3, 1), _ref(5, 2)
    log.record(
        [
            _committed(a, direct=False),
            LeaderStatus(Slot(4, 0), Decision.SKIP, direct=True),
            _committed(b, direct=True),
        ],
        [_subdag(7, a), _subdag(8, b)],
    )
    first, skipped, second = log.between(0, 10)
    assert (first.slot, first.decision, first.source) == (
        a.slot(),
        Decision.COMMIT,
        DecisionSource.INDIRECT,
    )
    assert (first.leader, first.commit_index) == (a, 7)
    assert (skipped.decision, skipped.source, skipped.leader) == (
        Decision.SKIP,
        DecisionSource.DIRECT,
        None,
    )
    assert (second.source, second.commit_index) == (DecisionSource.DIRECT, 8)
    assert [d.round for d in log.between(4, 4)] == [4]


def test_a_commit_no_decision_names_is_a_certified_one() -> None:
    log = DecisionLog()
    leader = _ref(9, 3)
    log.record([], [_subdag(4, leader)])
    (decision,) = log.between(9, 9)
    assert decision.source is DecisionSource.CERTIFIED and decision.commit_index == 4


def test_the_log_keeps_the_most_recent_slots() -> None:
    log = DecisionLog(capacity=5)
    for round in range(1, 21):
        log.record([LeaderStatus(Slot(round, 0), Decision.SKIP, direct=True)], [])
    assert len(log) == 5
    assert [d.round for d in log.between(0, 100)] == [16, 17, 18, 19, 20]
    with pytest.raises(ValueError):
        DecisionLog(capacity=0)


def test_restore_takes_the_stored_commits_down_to_a_round() -> None:
    log = DecisionLog()
    commits = [_commit(i, _ref(i + 1, i % 4)) for i in range(10, 0, -1)]  # newest first
    log.restore(commits, down_to_round=6)
    restored = log.between(0, 100)
    assert [d.round for d in restored] == [6, 7, 8, 9, 10, 11]
    assert all(d.source is DecisionSource.RESTORED for d in restored)
    assert restored[-1].commit_index == 10


def test_a_core_records_what_it_decides_and_a_restart_restores_its_commits() -> None:
    cluster = Cluster(4)
    cluster.run_until_round(20)
    node = cluster.nodes[0]
    decisions = node.core.decisions.between(0, 100)
    committed = [d for d in decisions if d.decision is Decision.COMMIT]
    assert committed and len(committed) == len(node.committed)
    for decision, subdag in zip(committed, node.committed, strict=True):
        assert decision.leader == subdag.leader
        assert decision.commit_index == subdag.commit.index
        assert decision.source in (DecisionSource.DIRECT, DecisionSource.INDIRECT)
    node.restart(cluster.now_ms)
    restored = node.core.decisions.between(0, 100)
    assert restored and all(d.source is DecisionSource.RESTORED for d in restored)
    assert {d.commit_index for d in restored} <= {s.commit.index for s in node.committed}
    assert restored[-1].commit_index == node.committed[-1].commit.index


def test_a_snapshot_holds_the_last_rounds_and_their_leaders() -> None:
    cluster = Cluster(4)
    cluster.run_until_round(30)
    core = cluster.nodes[1].core
    snapshot = recent_dag(core, 10)
    high = core.dag.highest_accepted_round
    assert snapshot.highest_round == high and snapshot.low_round == high - 9
    assert {b.author for b in snapshot.blocks} == {0, 1, 2, 3}
    assert all(snapshot.low_round <= b.round <= high for b in snapshot.blocks)
    keys = [b.reference().sort_key() for b in snapshot.blocks]
    assert keys == sorted(keys)
    rounds = [d.round for d in snapshot.decisions]
    assert rounds == sorted(rounds) and set(rounds) <= set(range(snapshot.low_round, high + 1))
    committed = [d for d in snapshot.decisions if d.decision is Decision.COMMIT]
    assert committed
    undecided = [d for d in snapshot.decisions if d.decision is Decision.UNDECIDED]
    # Undecided slots come after every decided one.
    assert undecided and min(d.round for d in undecided) > max(d.round for d in committed)
    assert all(d.source is None for d in undecided)
    for bad in (0, MAX_ROUNDS + 1):
        with pytest.raises(ValueError):
            recent_dag(core, bad)


def test_a_snapshot_too_large_keeps_its_highest_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = Cluster(4)
    cluster.run_until_round(20)
    core = cluster.nodes[0].core
    monkeypatch.setattr(recent_dag_module, "MAX_REFERENCES", 30)
    snapshot = recent_dag(core, 20)
    assert snapshot.highest_round == core.dag.highest_accepted_round
    assert snapshot.highest_round - snapshot.low_round + 1 < 20
    assert sum(1 + len(b.ancestors) for b in snapshot.blocks) <= 30
