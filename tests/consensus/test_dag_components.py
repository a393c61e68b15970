"""ThresholdClock, BlockManager, Linearizer and LeaderSchedule on small DAGs. (The
reputation scores of a withholding validator are tested end to end in
tests/sim/test_leader_reputation.py.)"""

from __future__ import annotations

from soma.consensus.block_manager import BlockManager
from soma.consensus.block_verifier import BlockVerifier
from soma.consensus.context import Context
from soma.consensus.dag_builder import DagBuilder
from soma.consensus.dag_state import DagState
from soma.consensus.leader_schedule import LeaderSchedule
from soma.consensus.linearizer import Linearizer, weighted_median
from soma.consensus.local_committee import generate_committee
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.store import ConsensusStore
from soma.consensus.threshold_clock import ThresholdClock
from soma.types.consensus.block import Slot
from soma.types.consensus.commit import ReputationScores

COMMITTEE, _ = generate_committee(4, seed=1)


def _dag(params: ConsensusParameters | None = None) -> tuple[DagState, BlockManager]:
    context = Context(COMMITTEE, 0, params or ConsensusParameters())
    dag = DagState(context, ConsensusStore.open_memory())
    return dag, BlockManager(dag, BlockVerifier(context))


# --- threshold clock -------------------------------------------------------------------------


def test_clock_moves_on_quorum_and_jumps_ahead() -> None:
    clock = ThresholdClock(COMMITTEE)
    for a in range(4):
        clock.add_block(0, a)
    assert clock.round == 1
    assert not clock.add_block(1, 0)
    assert not clock.add_block(1, 0)  # the same author twice counts once
    assert not clock.add_block(1, 1)
    assert clock.round == 1
    assert clock.add_block(1, 2)  # 3 of 4
    assert clock.round == 2
    assert clock.add_block(7, 3)  # a block of a higher round: jump to it
    assert clock.round == 7
    assert not clock.add_block(3, 1)  # old rounds change nothing
    assert clock.round == 7


def test_clock_counts_stake() -> None:
    committee, _ = generate_committee(4, seed=2, stakes=[1, 1, 1, 7])
    heavy = next(i for i, m in enumerate(committee.members) if m.stake == 7)
    light = [i for i in range(4) if i != heavy]
    clock = ThresholdClock(committee)
    clock.add_block(1, 0)  # enters round 1
    for a in light:
        clock.add_block(1, a)
    assert clock.round == 1  # 3 of 10 stake
    clock.add_block(1, heavy)
    assert clock.round == 2


# --- block manager ---------------------------------------------------------------------------


def test_suspends_until_ancestors_arrive_then_accepts_recursively() -> None:
    builder = DagBuilder(4)
    blocks = builder.layers(1, 4)
    dag, manager = _dag()
    by_round = {r: [b for b in blocks if b.round == r] for r in range(1, 5)}
    # Rounds 4, 3, 2 first: all suspended; round 1 is what is missing.
    result = manager.try_accept_blocks(by_round[4] + by_round[3] + by_round[2])
    assert result.accepted == []
    assert manager.suspended_count() == 12
    assert set(result.missing) == {b.reference() for b in by_round[1]}
    # Two round-1 blocks arrive: nothing above can be accepted yet (each needs all four).
    result = manager.try_accept_blocks(by_round[1][:2])
    assert [b.round for b in result.accepted] == [1, 1]
    assert set(result.missing) == {b.reference() for b in by_round[1][2:]}
    # The rest: everything unsuspends, ancestors before descendants.
    result = manager.try_accept_blocks(by_round[1][2:])
    rounds = [b.round for b in result.accepted]
    assert len(rounds) == 14
    assert rounds == sorted(rounds)
    assert manager.suspended_count() == 0
    assert result.missing == []
    assert all(dag.contains(b.reference()) for b in blocks)


def test_duplicates_are_accepted_once() -> None:
    builder = DagBuilder(4)
    blocks = builder.layers(1, 2)
    _, manager = _dag()
    assert len(manager.try_accept_blocks(blocks).accepted) == 8
    assert manager.try_accept_blocks(blocks).accepted == []
    later = builder.layers(3, 3)
    assert len(manager.try_accept_blocks(later + later).accepted) == 4


def test_timestamp_below_ancestor_is_rejected_on_acceptance() -> None:
    builder = DagBuilder(4)
    builder.layers(1, 1)
    early = builder.add_block(2, 0, builder.last_ancestors, timestamp_ms=5)
    _, manager = _dag()
    manager.try_accept_blocks(builder.all_blocks()[:4])
    result = manager.try_accept_blocks([early])
    assert result.accepted == []
    assert [b for b, _ in result.rejected] == [early]


def test_blocks_at_or_below_gc_round_are_dropped() -> None:
    params = ConsensusParameters(gc_depth=6)
    builder = DagBuilder(4)
    blocks = builder.layers(1, 20)
    dag, manager = _dag(params)
    manager.try_accept_blocks(blocks)
    linearizer = Linearizer(dag)
    leader = dag.blocks_at_slot(Slot(15, 0))[0]
    linearizer.commit_leaders([(leader, True)])
    assert dag.gc_round == 9
    # A late block at round 9 (at the GC round) is ignored; suspended ones below are dropped.
    late = builder.add_block(9, 1, [b.reference() for b in blocks if b.round == 8], variant=1)
    assert manager.try_accept_blocks([late]).accepted == []
    assert not dag.contains(late.reference())


# --- linearizer ------------------------------------------------------------------------------


def test_weighted_median() -> None:
    assert weighted_median([(10, 1), (20, 1), (30, 1)]) == 20
    assert weighted_median([(10, 1), (20, 1), (30, 1), (40, 1)]) == 20
    assert weighted_median([(10, 1), (20, 1), (30, 5)]) == 30
    assert weighted_median([(30, 1), (10, 5), (20, 1)]) == 10


def test_linearizer_orders_and_never_commits_twice() -> None:
    builder = DagBuilder(4)
    blocks = builder.layers(1, 6)
    dag, manager = _dag()
    manager.try_accept_blocks(blocks)
    linearizer = Linearizer(dag)
    first_leader = dag.blocks_at_slot(Slot(2, 1))[0]
    second_leader = dag.blocks_at_slot(Slot(4, 2))[0]
    [one] = linearizer.commit_leaders([(first_leader, True)])
    [two] = linearizer.commit_leaders([(second_leader, True)])
    refs_one = list(one.commit.blocks)
    refs_two = list(two.commit.blocks)
    assert refs_one == sorted(refs_one)
    assert refs_two == sorted(refs_two)
    assert refs_one[-1] == first_leader.reference()
    # Leader at round 2 brings in rounds 1-2 up to it: 4 round-1 blocks + itself.
    assert len(refs_one) == 5
    assert not set(refs_one) & set(refs_two)
    assert len(refs_two) == 3 + 4 + 1  # the rest of round 2, round 3, the leader
    assert two.commit.index == one.commit.index + 1
    assert two.commit.previous_digest == one.commit.digest()
    # Stake-weighted median of the leader's parents' timestamps (round*1000 + author).
    assert one.commit.timestamp_ms == 1001
    assert two.commit.timestamp_ms == 3001


# --- leader schedule -------------------------------------------------------------------------


def test_stake_weighted_election_is_deterministic_and_proportional() -> None:
    committee, _ = generate_committee(4, seed=5, stakes=[1, 1, 1, 7])
    heavy = next(i for i, m in enumerate(committee.members) if m.stake == 7)
    a = LeaderSchedule(committee, 1, 20)
    b = LeaderSchedule(committee, 1, 20)
    leaders = [a.leaders(r)[0] for r in range(1, 2001)]
    assert leaders == [b.leaders(r)[0] for r in range(1, 2001)]
    share = leaders.count(heavy) / len(leaders)
    assert 0.6 < share < 0.8


def test_low_scorers_are_swapped_out() -> None:
    # With 4 equal stakes, swapping needs a bad-node share of at least 25%.
    schedule = LeaderSchedule(COMMITTEE, 1, 33)
    before = {schedule.leaders(r)[0] for r in range(1, 400)}
    assert before == {0, 1, 2, 3}
    schedule.update(ReputationScores(1, 300, (10, 10, 0, 10)))
    after = [schedule.leaders(r)[0] for r in range(1, 400)]
    assert 2 not in after
    assert set(after) == {0, 1, 3}
