"""The commit rule on hand-built DAGs in the text format, with the round-robin schedule
(the leader of round r at offset k is authority (r + k) mod 4: round 1 is B, 2 is C, 3 is
D, 4 is A, ...). Four authorities, so f = 1 and a quorum is 3 blocks."""

from __future__ import annotations

import random

import pytest

from soma.consensus.committer.status import Decision
from soma.consensus.committer.universal import NOTHING_DECIDED, UniversalCommitter
from soma.consensus.context import Context
from soma.consensus.dag_builder import DagBuilder
from soma.consensus.dag_decide import decide_dag_text
from soma.consensus.dag_state import DagState
from soma.consensus.dag_text import parse_dag
from soma.consensus.leader_schedule import LeaderSchedule
from soma.consensus.store import ConsensusStore
from soma.sim.runner import build_committee
from soma.types.consensus.block import GENESIS_SIGNATURE, Block, BlockRef, SignedBlock, Slot

Row = tuple[int, str, str, str | None]


def decide(text: str, **options: object) -> list[Row]:
    rows = []
    for status in decide_dag_text(text, round_robin=True, **options):  # type: ignore[arg-type]
        d = status.describe()
        author = chr(ord("A") + int(str(d["authority"])))
        decided = None if d["decided"] is None else str(d["decided"])
        rows.append((int(str(d["round"])), author, str(d["status"]), decided))
    return rows


def full_dag(rounds: int) -> str:
    layers = ", ".join(f"Round {r} : {{ * }}" for r in range(1, rounds + 1))
    return f"DAG {{ Round 0 : {{ 4 }}, {layers} }}"


def test_fully_connected_dag_commits_every_leader_directly() -> None:
    # A leader at r needs its decision round r + 2: rounds 5 and 6 cannot be decided yet.
    assert decide(full_dag(6)) == [
        (1, "B", "commit", "direct"),
        (2, "C", "commit", "direct"),
        (3, "D", "commit", "direct"),
        (4, "A", "commit", "direct"),
        (5, "B", "undecided", None),
        (6, "C", "undecided", None),
    ]


def test_missing_leader_is_skipped_directly() -> None:
    # C has no block in round 2: all four round-3 blocks lack a link to C2 (blame 4 >= 3).
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], D -> [*] },
        Round 3 : { * }, Round 4 : { * }, Round 5 : { * }, Round 6 : { * } }"""
    assert decide(text)[:4] == [
        (1, "B", "commit", "direct"),
        (2, "C", "skip", "direct"),
        (3, "D", "commit", "direct"),
        (4, "A", "commit", "direct"),
    ]


def test_leader_ignored_by_voting_round_is_skipped_directly() -> None:
    # C2 exists but three round-3 blocks do not link it: blame from 3 of 4.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * },
        Round 3 : { A -> [-C2], B -> [-C2], C -> [*], D -> [-C2] },
        Round 4 : { * }, Round 5 : { * }, Round 6 : { * } }"""
    assert decide(text)[1] == (2, "C", "skip", "direct")


def test_two_blames_neither_commit_nor_skip_directly() -> None:
    # Only B and D ignore C2 (blame 2 < 3); A3 and C3 vote for it, so round-4 blocks see
    # 2 votes (< 3): no certificate. Undecided directly; its anchor (the first committed
    # leader at round >= 5) is B5, which has no certified link to C2: skipped indirectly.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * },
        Round 3 : { A -> [*], B -> [-C2], C -> [*], D -> [-C2] },
        Round 4 : { * }, Round 5 : { * }, Round 6 : { * }, Round 7 : { * } }"""
    rows = decide(text)
    assert rows[1] == (2, "C", "skip", "indirect")
    # The rest is undisturbed.
    assert rows[2] == (3, "D", "commit", "direct")
    assert rows[3] == (4, "A", "commit", "direct")


def test_indirect_commit_and_indirect_skip() -> None:
    # B1: A2, B2, C2 vote (D2 ignores it: blame 1); in round 3 only A3 links three voters,
    # so B1 has one certificate (< 3): undecided directly. Its anchor A4 (first committed
    # leader at round >= 4) links A3, a certificate: B1 commits indirectly.
    # C2: voted by A3 and C3 only; no round-4 block sees 3 votes: no certificate; blame
    # from B3 and D3 is 2 (< 3). Anchor B5 is committed with no certified link: skipped
    # indirectly.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], C -> [*], D -> [-B1] },
        Round 3 : { A -> [*], B -> [B2, D2], C -> [C2, D2], D -> [D2, A2] },
        Round 4 : { * }, Round 5 : { * }, Round 6 : { * }, Round 7 : { * }, Round 8 : { * } }"""
    assert decide(text) == [
        (1, "B", "commit", "indirect"),
        (2, "C", "skip", "indirect"),
        (3, "D", "commit", "direct"),
        (4, "A", "commit", "direct"),
        (5, "B", "commit", "direct"),
        (6, "C", "commit", "direct"),
        (7, "D", "undecided", None),
        (8, "A", "undecided", None),
    ]


def test_undecided_without_a_decided_anchor() -> None:
    # Same shape for B1 but the DAG stops at round 5: the anchor A4 has no decision round
    # (6) yet, so B1 stays undecided.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], C -> [*], D -> [-B1] },
        Round 3 : { A -> [*], B -> [B2, D2], C -> [C2, D2], D -> [D2, A2] },
        Round 4 : { * }, Round 5 : { * } }"""
    assert decide(text)[0] == (1, "B", "undecided", None)


def _committer(builder: DagBuilder, **options: int | bool) -> UniversalCommitter:
    committee, _ = build_committee(builder.committee_size, seed=0)
    dag = DagState(Context(committee, 0), ConsensusStore.open_memory())
    dag.accept_blocks(builder.all_blocks())
    leaders = int(options.get("leaders_per_round", 1))
    schedule = LeaderSchedule(committee, leaders, round_robin=True)
    return UniversalCommitter(
        committee,
        dag,
        schedule,
        int(options.get("wave_length", 3)),
        bool(options.get("pipeline", True)),
        leaders,
    )


def test_undecided_slot_stops_the_decided_prefix() -> None:
    # B1 is undecided (as above, without its anchor decided) while C2.. are decided
    # directly: try_decide returns nothing, because commits must follow slot order.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], C -> [*], D -> [-B1] },
        Round 3 : { A -> [*], B -> [B2, D2], C -> [C2, D2], D -> [D2, A2] },
        Round 4 : { * }, Round 5 : { * } }"""
    committer = _committer(parse_dag(text))
    statuses = committer.decide_all()
    assert [s.round for s in statuses if s.decided] == [3]  # D3 is decided directly
    assert committer.try_decide(NOTHING_DECIDED) == []


def test_try_decide_resumes_after_last_decided() -> None:
    builder = DagBuilder(4)
    builder.layers(1, 8)
    committer = _committer(builder)
    first = committer.try_decide(NOTHING_DECIDED)
    assert [s.round for s in first] == [1, 2, 3, 4, 5, 6]
    assert committer.try_decide((4, 0)) == first[4:]
    assert committer.try_decide((6, 0)) == []


@pytest.mark.parametrize("leaders", [1, 2, 3])
def test_leaders_per_round(leaders: int) -> None:
    rows = decide(full_dag(8), leaders_per_round=leaders)
    expected = []
    for r in range(1, 9):
        for k in range(leaders):
            author = chr(ord("A") + (r + k) % 4)
            if r <= 6:
                expected.append((r, author, "commit", "direct"))
            else:
                expected.append((r, author, "undecided", None))
    assert rows == expected


def test_second_leader_of_a_round_can_be_skipped_alone() -> None:
    # Round 2's leaders with L = 2 are C and D; D has no block in round 2.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], C -> [*] },
        Round 3 : { * }, Round 4 : { * }, Round 5 : { * }, Round 6 : { * } }"""
    rows = decide(text, leaders_per_round=2)
    assert (2, "C", "commit", "direct") in rows
    assert (2, "D", "skip", "direct") in rows


def test_no_pipeline_has_one_leader_per_wave() -> None:
    assert decide(full_dag(8), pipeline=False) == [
        (3, "D", "commit", "direct"),
        (6, "C", "commit", "direct"),
    ]


def test_wave_length_four() -> None:
    # The decision round is r + 3.
    assert decide(full_dag(8), wave_length=4) == [
        (1, "B", "commit", "direct"),
        (2, "C", "commit", "direct"),
        (3, "D", "commit", "direct"),
        (4, "A", "commit", "direct"),
        (5, "B", "commit", "direct"),
        (6, "C", "undecided", None),
        (7, "D", "undecided", None),
        (8, "A", "undecided", None),
    ]
    assert decide(full_dag(8), wave_length=4, pipeline=False) == [
        (4, "A", "commit", "direct"),
        (8, "A", "undecided", None),
    ]


# --- equivocating leaders ------------------------------------------------------------------


def _block(round: int, author: int, ancestors: list[BlockRef], salt: bytes = b"") -> SignedBlock:
    """A block with its ancestors in exactly the given order."""
    txs = (salt,) if salt else ()
    return SignedBlock(
        Block(0, round, author, round * 1000, tuple(ancestors), txs, ()), GENESIS_SIGNATURE
    )


def _equivocation_dag(first_variant: int) -> tuple[DagBuilder, list[SignedBlock]]:
    """B (the round-1 leader) signs two blocks in round 1. A2, C2 and D2 link both, with
    variant `first_variant` first among their ancestors; B2 links only its other one."""
    builder = DagBuilder(4)
    genesis = [b.reference() for b in builder.genesis]
    r1 = {a: _block(1, a, [genesis[a]] + [g for g in genesis if g.author != a]) for a in (0, 2, 3)}
    variants = [
        _block(1, 1, [genesis[1]] + [g for g in genesis if g.author != 1], bytes([v]))
        for v in (1, 2)
    ]
    first = variants[first_variant]
    second = variants[1 - first_variant]
    r2 = []
    for a in (0, 2, 3):
        others = [r1[x].reference() for x in (0, 2, 3) if x != a]
        r2.append(_block(2, a, [r1[a].reference(), first.reference(), second.reference(), *others]))
    r2.append(_block(2, 1, [second.reference(), *(r1[x].reference() for x in (0, 2, 3))]))
    for block in [*r1.values(), *variants, *r2]:
        builder.blocks[block.reference()] = block
    builder.last_ancestors = [b.reference() for b in r2]
    builder.layers(3, 5)
    return builder, variants


@pytest.mark.parametrize("first_variant", [0, 1])
def test_vote_goes_to_the_block_first_reached(first_variant: int) -> None:
    builder, variants = _equivocation_dag(first_variant)
    committer = _committer(builder)
    [status] = [s for s in committer.decide_all() if s.round == 1]
    assert status.decision is Decision.COMMIT and status.direct
    # Three voters reached `first` first; only B2 voted for the other.
    assert status.block == variants[first_variant]


def test_equivocating_leaders_never_commit_two_blocks_in_a_slot() -> None:
    """B equivocates in every round; honest authors link a random quorum of the previous
    round, in random order. Every decided slot names one block, and no committer raises
    a safety violation."""
    for seed in range(60):
        rng = random.Random(seed)
        builder = DagBuilder(4)
        previous = [b.reference() for b in builder.genesis]
        for round in range(1, 12):
            made: list[SignedBlock] = []
            for author in range(4):
                variants = 2 if author == 1 else 1
                for v in range(variants):
                    own = [r for r in previous if r.author == author]
                    others = [r for r in previous if r.author != author]
                    rng.shuffle(others)
                    links = own[:1] + others[: rng.randint(2, len(others))]
                    block = _block(round, author, links, bytes([v + 1]) if variants > 1 else b"")
                    builder.blocks[block.reference()] = block
                    made.append(block)
            previous = [b.reference() for b in made]
        committer = _committer(builder)
        for status in committer.decide_all():
            if status.decision is Decision.COMMIT:
                assert status.block is not None
                slot = Slot(status.round, status.block.author)
                assert status.block.slot() == slot
        committed = [s for s in committer.try_decide() if s.decision is Decision.COMMIT]
        slots = [(s.round, s.leader_offset) for s in committed]
        assert len(slots) == len(set(slots))
