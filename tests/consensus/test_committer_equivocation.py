"""Equivocating leaders and the depth-first "first reached" vote rule.

The text format cannot express two blocks in one slot (an author may appear once per
round), so these DAGs are built programmatically: `DagBuilder.add_block(variant=...)`
for equivocations whose ancestor order does not matter, and `SignedBlock`s made by hand
where the order of a block's ancestors is the point of the test (`add_block` sorts them:
own block first, then by round descending, author, digest).

Round-robin schedule over four equal-stake authorities (A=0 .. D=3): the leader of round
r is (r + k) mod 4, so round 1's leader is B. A quorum is 3 blocks.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from soma.consensus.committer.base import SafetyViolationError
from soma.consensus.committer.status import Decision, LeaderStatus
from soma.consensus.committer.universal import UniversalCommitter
from soma.consensus.context import Context
from soma.consensus.dag_builder import DagBuilder
from soma.consensus.dag_state import DagState
from soma.consensus.leader_schedule import LeaderSchedule
from soma.consensus.local_committee import build_committee
from soma.consensus.store import ConsensusStore
from soma.types.consensus.block import (
    GENESIS_SIGNATURE,
    Block,
    BlockRef,
    SignedBlock,
    Slot,
    genesis_blocks,
)

A, B, C, D = range(4)
COMMITTEE, _ = build_committee(4, seed=0)
GENESIS = [b.reference() for b in genesis_blocks(0, 4)]


def block(
    round: int, author: int, ancestors: Iterable[SignedBlock | BlockRef], salt: int = 0
) -> SignedBlock:
    """A block listing `ancestors` in exactly the given order; `salt` makes another block
    for the same slot."""
    refs = tuple(a.reference() if isinstance(a, SignedBlock) else a for a in ancestors)
    txs = (bytes([salt]),) if salt else ()
    return SignedBlock(
        Block(0, round, author, round * 1000 + author, refs, txs, ()), GENESIS_SIGNATURE
    )


def committer(
    blocks: Iterable[SignedBlock], wave_length: int = 3, leaders_per_round: int = 1
) -> UniversalCommitter:
    dag = DagState(Context(COMMITTEE, 0), ConsensusStore.open_memory())
    dag.accept_blocks(sorted(blocks, key=lambda b: b.round))
    schedule = LeaderSchedule(COMMITTEE, leaders_per_round, round_robin=True)
    return UniversalCommitter(COMMITTEE, dag, schedule, wave_length, True, leaders_per_round)


def status_at(statuses: list[LeaderStatus], round: int) -> LeaderStatus:
    [status] = [s for s in statuses if s.round == round]
    return status


def full_layers(
    blocks: list[SignedBlock], previous: list[SignedBlock], first: int, last: int
) -> list[SignedBlock]:
    """Fully connected rounds first..last on top of `previous` (own block first)."""
    for r in range(first, last + 1):
        made = []
        for a in range(4):
            own = [p for p in previous if p.author == a][:1]
            made.append(block(r, a, own + [p for p in previous if p not in own]))
        blocks += made
        previous = made
    return blocks


def round_one(equivocations: int = 2) -> tuple[dict[int, SignedBlock], list[SignedBlock]]:
    """Honest A1, C1, D1 linking genesis, and `equivocations` different B1 blocks."""
    honest = {
        a: block(1, a, [GENESIS[a], *(g for g in GENESIS if g.author != a)]) for a in (A, C, D)
    }
    variants = [
        block(1, B, [GENESIS[B], *(g for g in GENESIS if g.author != B)], salt=v + 1)
        for v in range(equivocations)
    ]
    return honest, variants


# --- how DagBuilder represents an equivocation ------------------------------------------------


def test_dag_builder_variants_are_distinct_blocks_of_one_slot() -> None:
    builder = DagBuilder(4)
    builder.layer(1, authors=[A, C, D])
    links = [g.reference() for g in builder.genesis]
    first = builder.add_block(1, B, links)
    second = builder.add_block(1, B, links, variant=1)
    assert first.reference() != second.reference()
    assert first.slot() == second.slot()
    assert builder.blocks_at_slot(second.slot()) == [first, second]
    # The same call again is the same block, not a third one.
    builder.add_block(1, B, links, variant=1)
    assert len(builder.blocks_at_slot(second.slot())) == 2


def test_voter_linking_both_variants_votes_for_the_one_listed_first() -> None:
    # add_block sorts a block's ancestors by (round desc, author, digest), so a round-2
    # block linking both B1 variants lists the one with the smaller digest first and votes
    # for it. All four round-2 blocks link both; round 3 is full: that variant gets four
    # votes in every round-3 block and commits directly, the other gets none.
    builder = DagBuilder(4)
    round1 = builder.layer(1)
    other = builder.add_block(1, B, [g.reference() for g in builder.genesis], variant=1)
    builder.last_ancestors = [b.reference() for b in round1] + [other.reference()]
    builder.layers(2, 3)
    variants = [round1[B], other]
    listed_first = min(variants, key=lambda b: b.reference().digest)
    [r2] = builder.blocks_at_slot(Slot(2, A))
    b_links = [ref for ref in r2.ancestors if ref.author == B]
    assert b_links[0] == listed_first.reference()

    status = status_at(committer(builder.all_blocks()).decide_all(up_to_round=1), 1)
    assert (status.decision, status.direct) == (Decision.COMMIT, True)
    assert status.block == listed_first


# --- the first-reached vote -----------------------------------------------------------------


@pytest.mark.parametrize("first", [0, 1])
def test_direct_links_vote_for_the_block_listed_first(first: int) -> None:
    # A2, C2, D2 link both B1 variants, `first` before the other: each votes only for
    # `first`. B2 links only the other one (1 vote). Every round-3 block links all of
    # round 2 and so sees 3 votes for `first` and 1 for the other: `first` gets four
    # certificates and commits directly, the other none.
    honest, variants = round_one()
    chosen, other = variants[first], variants[1 - first]
    r2 = [
        block(2, a, [honest[a], chosen, other, *(honest[x] for x in (A, C, D) if x != a)])
        for a in (A, C, D)
    ]
    r2.append(block(2, B, [other, *honest.values()]))
    blocks = full_layers([*honest.values(), *variants, *r2], r2, 3, 5)
    status = status_at(committer(blocks).decide_all(), 1)
    assert (status.decision, status.direct, status.block) == (Decision.COMMIT, True, chosen)


@pytest.mark.parametrize("deep", [0, 1])
def test_depth_first_search_explores_the_first_ancestor_completely(deep: int) -> None:
    """With wave length 4 the votes a decision-round block (round 4) counts are its
    round-3 ancestors, each voting for the B1 block it reaches first depth-first.

    Round 2: A2 and C2 link `deep`, B2 and D2 link `shallow` (the other variant).
    Round 3: A3 = [A2, shallow, C2, D2]: a breadth-first search would meet `shallow` at
    depth 1, but the depth-first search explores A2 completely first and finds `deep`.
    C3 = [C2, shallow, A2, D2] likewise votes `deep`, D3 = [A2, D2, shallow] too (A2 is
    explored before D2). B3 = [B2, A2, C2, D2] votes `shallow` through B2.
    So `deep` has 3 votes in every round-4 block (4 certificates: direct commit), while
    `shallow` -- the only B1 block that A3, C3 and D3 link directly -- has one."""
    honest, variants = round_one()
    deep_block, shallow = variants[deep], variants[1 - deep]
    a2 = block(2, A, [honest[A], deep_block, honest[C], honest[D]])
    c2 = block(2, C, [honest[C], deep_block, honest[A], honest[D]])
    b2 = block(2, B, [shallow, honest[A], honest[C], honest[D]])
    d2 = block(2, D, [honest[D], shallow, honest[A], honest[C]])
    a3 = block(3, A, [a2, shallow, c2, d2])
    c3 = block(3, C, [c2, shallow, a2, d2])
    d3 = block(3, D, [a2, d2, shallow])
    b3 = block(3, B, [b2, a2, c2, d2])
    r3 = [a3, b3, c3, d3]
    blocks = full_layers([*honest.values(), *variants, a2, b2, c2, d2, *r3], r3, 4, 8)
    statuses = committer(blocks, wave_length=4).decide_all()
    status = status_at(statuses, 1)
    assert (status.decision, status.direct, status.block) == (Decision.COMMIT, True, deep_block)


# --- never two blocks of one slot ------------------------------------------------------------


def test_two_certified_blocks_in_one_slot_raise_instead_of_committing_both() -> None:
    # Beyond the fault threshold: B and D both equivocate in rounds 2 and 3. B1a is voted
    # by A2, B2x, D2x and B1b by C2, B2y, D2y; A3, B3x, D3x link the first three, C3,
    # B3y, D3y the others: three certificates (distinct authors) for each B1 block. The
    # committer refuses to commit either.
    honest, (b1a, b1b) = round_one()
    a2 = block(2, A, [honest[A], b1a])
    b2x = block(2, B, [b1a], salt=1)
    d2x = block(2, D, [honest[D], b1a], salt=1)
    c2 = block(2, C, [honest[C], b1b])
    b2y = block(2, B, [b1b], salt=2)
    d2y = block(2, D, [honest[D], b1b], salt=2)
    r3 = [
        block(3, A, [a2, b2x, d2x]),
        block(3, B, [b2x, a2, d2x], salt=1),
        block(3, D, [d2x, a2, b2x], salt=1),
        block(3, C, [c2, b2y, d2y]),
        block(3, B, [b2y, c2, d2y], salt=2),
        block(3, D, [d2y, c2, b2y], salt=2),
    ]
    blocks = [*honest.values(), b1a, b1b, a2, b2x, d2x, c2, b2y, d2y, *r3]
    with pytest.raises(SafetyViolationError, match="slot B1"):
        committer(blocks).decide_all(up_to_round=1)


def _random_dag(seed: int, rounds: int = 12) -> list[SignedBlock]:
    """B equivocates (two blocks) in every round; every block links one block of its own
    author from the previous round and a random 2 or 3 other authors (so at least a
    quorum of authors), picking at random which of B's blocks it links."""
    rng = random.Random(seed)
    previous = {g.author: [g] for g in genesis_blocks(0, 4)}
    blocks: list[SignedBlock] = []
    for r in range(1, rounds + 1):
        made: dict[int, list[SignedBlock]] = {}
        for a in range(4):
            made[a] = []
            for v in range(2 if a == B else 1):
                others = [x for x in range(4) if x != a]
                rng.shuffle(others)
                chosen = [a, *others[: rng.randint(2, 3)]]
                links = [rng.choice(previous[x]) for x in chosen]
                made[a].append(block(r, a, links, salt=v + 1 if a == B else 0))
        blocks += [b for bs in made.values() for b in bs]
        previous = made
    return blocks


def _key(status: LeaderStatus) -> tuple[object, ...]:
    ref = status.block.reference() if status.block is not None else None
    return status.slot, status.decision, ref


@pytest.mark.parametrize(("wave_length", "leaders"), [(3, 1), (3, 2), (4, 1)])
def test_decisions_never_change_as_the_dag_grows(wave_length: int, leaders: int) -> None:
    """With one equivocator (f = 1) the decided prefix output on any round-prefix of the
    DAG is a prefix of the one output on the whole DAG: same slots, same decisions, the
    same block for every commit. Every committed block is one of its slot's blocks."""
    decisions = {Decision.COMMIT: 0, Decision.SKIP: 0}
    for seed in range(25):
        blocks = _random_dag(seed)
        full = committer(blocks, wave_length, leaders).try_decide()
        for status in full:
            decisions[status.decision] += 1
            if status.decision is Decision.COMMIT:
                assert status.block is not None and status.block.slot() == status.slot
        for top in range(wave_length, 12):
            part = committer([b for b in blocks if b.round <= top], wave_length, leaders)
            prefix = part.try_decide()
            assert [_key(s) for s in prefix] == [_key(s) for s in full[: len(prefix)]], (
                seed,
                top,
            )
    # The random DAGs exercise both outcomes.
    assert decisions[Decision.COMMIT] > 0 and decisions[Decision.SKIP] > 0
