"""The commit rule on hand-built DAGs in the text format.

Every test uses the round-robin schedule: the leader of round r at offset k is authority
(r + k) mod 4, so with one leader per round round 1 is B, 2 is C, 3 is D, 4 is A, 5 is B,
6 is C, 7 is D, 8 is A. Four equal-stake authorities: f = 1, a quorum is 3 blocks.

Each expected row is (round, leader, status, how) and was worked out by hand from the
rules; the comment above it says why. Wave length 3 unless stated: a leader at r has its
voting round r + 1 and its decision round r + 2, and its anchor is the first committed
leader at a round >= r + 3.
"""

from __future__ import annotations

import pytest

from soma.consensus.committer.universal import NOTHING_DECIDED, UniversalCommitter
from soma.consensus.context import Context
from soma.consensus.dag_builder import DagBuilder
from soma.consensus.dag_decide import decide_dag_text
from soma.consensus.dag_state import DagState
from soma.consensus.dag_text import parse_dag
from soma.consensus.leader_schedule import LeaderSchedule
from soma.consensus.local_committee import build_committee
from soma.consensus.store import ConsensusStore

Row = tuple[int, str, str, str | None]

CD = ("commit", "direct")
CI = ("commit", "indirect")
SD = ("skip", "direct")
SI = ("skip", "indirect")
U = ("undecided", None)


def decide(text: str, **options: object) -> list[Row]:
    """`soma dag decide --schedule round-robin` as (round, letter, status, how) rows."""
    rows = []
    for status in decide_dag_text(text, round_robin=True, **options):  # type: ignore[arg-type]
        d = status.describe()
        author = chr(ord("A") + int(str(d["authority"])))
        decided = None if d["decided"] is None else str(d["decided"])
        rows.append((int(str(d["round"])), author, str(d["status"]), decided))
    return rows


def full_dag(rounds: int, size: int = 4) -> str:
    layers = ", ".join(f"Round {r} : {{ * }}" for r in range(1, rounds + 1))
    return f"DAG {{ Round 0 : {{ {size} }}, {layers} }}"


def committer_for(builder: DagBuilder, **options: int | bool) -> UniversalCommitter:
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


# --- the direct rule -------------------------------------------------------------------------


def test_fully_connected_dag_commits_every_leader_directly() -> None:
    # Every block votes for the leader below it and every decision-round block sees four
    # votes. Rounds 5 and 6 have no decision round (7, 8) yet and no later anchor.
    assert decide(full_dag(6)) == [
        (1, "B", *CD),
        (2, "C", *CD),
        (3, "D", *CD),
        (4, "A", *CD),
        (5, "B", *U),
        (6, "C", *U),
    ]


def test_missing_leader_is_skipped_directly() -> None:
    # C has no block in round 2, so no round-3 block links any C block: blame from all
    # four (>= 3). The rest of the DAG is full and commits directly.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], D -> [*] },
        Round 3 : { * }, Round 4 : { * }, Round 5 : { * }, Round 6 : { * } }"""
    assert decide(text) == [
        (1, "B", *CD),  # round 2 votes 4x; round-3 blocks each see 4 votes
        (2, "C", *SD),
        (3, "D", *CD),
        (4, "A", *CD),
        (5, "B", *U),
        (6, "C", *U),
    ]


def test_leader_ignored_by_the_voting_round_is_skipped_directly() -> None:
    # C2 exists, but A3, B3 and D3 link no C block: blame from 3 of 4.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * },
        Round 3 : { A -> [-C2], B -> [-C2], C -> [*], D -> [-C2] },
        Round 4 : { * }, Round 5 : { * }, Round 6 : { * } }"""
    assert decide(text) == [
        # Round-3 blocks all link A2, B2, D2 (votes for B1 come from round 2): each of them
        # sees the three voters A2, B2, D2 (and C3 also C2) -> four certificates.
        (1, "B", *CD),
        (2, "C", *SD),
        (3, "D", *CD),
        (4, "A", *CD),
        (5, "B", *U),
        (6, "C", *U),
    ]


def test_exactly_a_quorum_of_certificates_commits() -> None:
    # D3 gets votes from B4, C4, D4 (A4 skips it: blame 1). In round 5 only A5 and B5
    # link three voters; C5 links B4, D4 (2 votes) and D5 links A4 only: 2 certificates.
    # Adding one more certificate-making block turns it into a direct commit.
    two = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * }, Round 3 : { * },
        Round 4 : { A -> [-D3], B -> [*], C -> [*], D -> [*] },
        Round 5 : { A -> [*], B -> [*], C -> [B4, D4], D -> [A4] },
        Round 6 : { * } }"""
    three = two.replace("C -> [B4, D4]", "C -> [B4, C4, D4]")
    assert decide(two)[2] == (3, "D", *U)
    assert decide(three)[2] == (3, "D", *CD)


def test_a_link_to_an_earlier_block_of_the_leader_is_not_blame() -> None:
    # A3, B3 and D3 skip C2 but link C1. The implementation (like Sui's
    # `enough_leader_blame`) only counts a voting block as blame if it links no block of
    # the leader's author at all, so there is no direct skip. C2 has a single vote (C3):
    # no certificate, undecided directly; its anchor B5 (committed directly) has no
    # certified link to it: skipped indirectly.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * },
        Round 3 : { A -> [-C2, C1], B -> [-C2, C1], C -> [*], D -> [-C2, C1] },
        Round 4 : { * }, Round 5 : { * }, Round 6 : { * }, Round 7 : { * } }"""
    assert decide(text) == [
        (1, "B", *CD),
        (2, "C", *SI),
        (3, "D", *CD),
        (4, "A", *CD),
        (5, "B", *CD),
        (6, "C", *U),
        (7, "D", *U),
    ]
    # Without the C1 links the same three blocks are blame: direct skip.
    assert decide(text.replace(", C1]", "]"))[1] == (2, "C", *SD)


# --- the indirect rule -------------------------------------------------------------------------

# B1: voted by A2, B2, C2 (D2 skips it). In round 3 only A3 links three of those voters,
# so B1 has one certificate. C2: voted by A3 and C3 only, B3 and D3 link no C block
# (blame 2 < 3), and no round-4 block can see more than those 2 votes.
INDIRECT = """DAG { Round 0 : { 4 }, Round 1 : { * },
    Round 2 : { A -> [*], B -> [*], C -> [*], D -> [-B1] },
    Round 3 : { A -> [*], B -> [B2, D2], C -> [C2, D2], D -> [D2, A2] },
    Round 4 : { * }, Round 5 : { * }, Round 6 : { * }, Round 7 : { * }, Round 8 : { * } }"""


def test_indirect_commit_and_indirect_skip() -> None:
    assert decide(INDIRECT) == [
        # One certificate (A3) < 3: not direct. Anchor = first committed leader at
        # round >= 4 = A4 (direct); A4 links A3, a certificate: commit.
        (1, "B", *CI),
        # No certificate, blame 2: not direct. Anchor = B5 (round >= 5, direct); none of
        # B5's round-4 ancestors is a certificate: skip.
        (2, "C", *SI),
        (3, "D", *CD),
        (4, "A", *CD),
        (5, "B", *CD),
        (6, "C", *CD),
        (7, "D", *U),
        (8, "A", *U),
    ]


def test_skipped_later_leaders_are_passed_over_when_looking_for_the_anchor() -> None:
    # As INDIRECT, but A has no block in round 4: A4 is skipped directly (all round-5
    # blocks lack an A link), so B1's anchor is the next committed leader, B5, which
    # reaches A3 through B4/C4/D4: B1 still commits indirectly. C2's anchor is B5 too.
    text = INDIRECT.replace("Round 4 : { * }", "Round 4 : { B -> [*], C -> [*], D -> [*] }")
    assert decide(text) == [
        (1, "B", *CI),
        (2, "C", *SI),
        # Voted by B4, C4, D4 (3); each round-5 block links those three: 4 certificates.
        (3, "D", *CD),
        (4, "A", *SD),
        (5, "B", *CD),
        (6, "C", *CD),
        (7, "D", *U),
        (8, "A", *U),
    ]


def test_anchor_without_its_decision_round_leaves_the_slot_undecided() -> None:
    # INDIRECT cut at round 5: B1's candidate anchors A4 (needs round 6) and B5 are not
    # decided, so B1 stays undecided; likewise C2. D3 is decided directly.
    text = INDIRECT.split("Round 6")[0].rstrip(", ") + " }"
    assert decide(text) == [(1, "B", *U), (2, "C", *U), (3, "D", *CD), (4, "A", *U), (5, "B", *U)]


def test_an_undecided_anchor_candidate_stops_the_indirect_rule() -> None:
    # C2: two votes (A3, C3), two blames (B3, D3): undecided directly.
    # B5: two votes (A6, B6), two blames (C6, D6), no certificate in round 7: undecided.
    # C6 commits directly. The indirect rule for C2 walks B5 (round >= 5) first, finds it
    # undecided and stops: C2 stays undecided although a committed leader (C6) follows.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * },
        Round 3 : { A -> [*], B -> [-C2], C -> [*], D -> [-C2] },
        Round 4 : { * }, Round 5 : { * },
        Round 6 : { A -> [*], B -> [*], C -> [-B5], D -> [-B5] },
        Round 7 : { * }, Round 8 : { * } }"""
    assert decide(text) == [
        (1, "B", *CD),
        (2, "C", *U),
        (3, "D", *CD),
        # Voted by all of round 5; C6 and D6 link A5, C5, D5 (3 votes): 4 certificates.
        (4, "A", *CD),
        (5, "B", *U),
        (6, "C", *CD),
        (7, "D", *U),
        (8, "A", *U),
    ]


# --- the decided prefix ----------------------------------------------------------------------


def test_undecided_slot_stops_the_decided_prefix() -> None:
    # INDIRECT up to round 5: try_decide looks at rounds up to 5 - 2 = 3. B1 and C2 are
    # undecided (no anchor decided yet) while D3 is decided directly; nothing may be
    # output before B1, so try_decide returns nothing.
    text = INDIRECT.split("Round 6")[0].rstrip(", ") + " }"
    committer = committer_for(parse_dag(text))
    statuses = committer.decide_all()
    assert [(s.round, s.decision.value) for s in statuses] == [
        (1, "undecided"),
        (2, "undecided"),
        (3, "commit"),
    ]
    assert committer.try_decide(NOTHING_DECIDED) == []


def test_decided_prefix_stops_in_the_middle_of_a_round() -> None:
    # Three leaders per round: round 2 has C (offset 0), D (1), A (2). A2 gets two votes
    # (A3, C3) and two blames (B3, D3), no certificate, and its anchors (round >= 5) are
    # undecided in a DAG ending at 6. try_decide (rounds up to 4) outputs round 1 and the
    # first two leaders of round 2, then stops at A2 although rounds 3 and 4 are decided.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * },
        Round 3 : { A -> [*], B -> [-A2], C -> [*], D -> [-A2] },
        Round 4 : { * }, Round 5 : { * }, Round 6 : { * } }"""
    assert decide(text, leaders_per_round=3) == [
        (1, "B", *CD),
        (1, "C", *CD),
        (1, "D", *CD),
        (2, "C", *CD),
        (2, "D", *CD),
        (2, "A", *U),
        (3, "D", *CD),
        (3, "A", *CD),
        (3, "B", *CD),
        (4, "A", *CD),
        (4, "B", *CD),
        (4, "C", *CD),
        (5, "B", *U),
        (5, "C", *U),
        (5, "D", *U),
        (6, "C", *U),
        (6, "D", *U),
        (6, "A", *U),
    ]
    committer = committer_for(parse_dag(text), leaders_per_round=3)
    output = committer.try_decide(NOTHING_DECIDED)
    assert [(s.round, s.leader_offset, s.slot.authority) for s in output] == [
        (1, 0, 1),
        (1, 1, 2),
        (1, 2, 3),
        (2, 0, 2),
        (2, 1, 3),
    ]


def test_try_decide_resumes_after_last_decided() -> None:
    builder = DagBuilder(4)
    builder.layers(1, 8)
    committer = committer_for(builder)
    first = committer.try_decide(NOTHING_DECIDED)
    # Highest round 8: slots up to round 6 can be decided.
    assert [(s.round, s.decision.value, s.direct) for s in first] == [
        (r, "commit", True) for r in range(1, 7)
    ]
    assert committer.try_decide((4, 0)) == first[4:]
    assert committer.try_decide((6, 0)) == []


# --- several leaders per round -------------------------------------------------------------


@pytest.mark.parametrize("leaders", [1, 2, 3])
def test_leaders_per_round_on_a_full_dag(leaders: int) -> None:
    # Offset k of round r is (r + k) mod 4; all decided directly up to round 6.
    expected = [
        (r, chr(ord("A") + (r + k) % 4), *(CD if r <= 6 else U))
        for r in range(1, 9)
        for k in range(leaders)
    ]
    assert decide(full_dag(8), leaders_per_round=leaders) == expected


def test_second_leader_of_a_round_is_skipped_alone() -> None:
    # L = 2: round 2's leaders are C and D; D has no block in round 2 (direct skip, all of
    # round 3 lacks a D link), C2 is unaffected. Round 3's leaders D and A exist again.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], C -> [*] },
        Round 3 : { * }, Round 4 : { * }, Round 5 : { * }, Round 6 : { * } }"""
    assert decide(text, leaders_per_round=2) == [
        (1, "B", *CD),
        (1, "C", *CD),
        (2, "C", *CD),
        (2, "D", *SD),
        (3, "D", *CD),
        (3, "A", *CD),
        (4, "A", *CD),
        (4, "B", *CD),
        (5, "B", *U),
        (5, "C", *U),
        (6, "C", *U),
        (6, "D", *U),
    ]


def test_two_leaders_on_the_indirect_dag() -> None:
    # L = 2 on INDIRECT: round 1's leaders are B and C, round 2's C and D.
    rows = decide(INDIRECT, leaders_per_round=2)
    assert rows[:4] == [
        # B1 as with one leader: anchor A4 (first committed slot at round >= 4) links A3.
        (1, "B", *CI),
        # C1 is voted by all of round 2, but B3, C3, D3 link only two round-2 blocks each:
        # one certificate (A3). Same anchor A4: commit indirectly.
        (1, "C", *CI),
        # C2 as with one leader: its anchor B5 (round 5, offset 0) has no certified link.
        (2, "C", *SI),
        # D2 is linked by every round-3 block (4 votes) and round 4 is full: commit.
        (2, "D", *CD),
    ]


def test_too_many_leaders_per_round_is_refused() -> None:
    with pytest.raises(ValueError, match="leaders_per_round"):
        decide(full_dag(3), leaders_per_round=5)


# --- without pipelining, and longer waves -----------------------------------------------------


def test_no_pipeline_has_one_leader_per_wave() -> None:
    # One base committer with round offset 0: leader rounds 0, 3, 6, ...; round 0 holds
    # genesis and never has a leader, so the first leader round is 3. Round 6's decision
    # round 8 exists; round 9 is beyond the DAG.
    assert decide(full_dag(8), pipeline=False) == [(3, "D", *CD), (6, "C", *CD)]
    assert decide(full_dag(9), pipeline=False) == [
        (3, "D", *CD),
        (6, "C", *CD),
        (9, "B", *U),
    ]
    assert decide(full_dag(2), pipeline=False) == []


def test_no_pipeline_indirect_commit_from_the_next_wave() -> None:
    # D3 is voted by A4, B4, C4 (D4 skips it); in round 5 only A5 links three voters:
    # one certificate. The next wave's leader C6 commits directly and reaches A5: D3
    # commits indirectly. (Rounds 4 and 5 are not leader rounds without pipelining.)
    text = """DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * }, Round 3 : { * },
        Round 4 : { A -> [*], B -> [*], C -> [*], D -> [-D3] },
        Round 5 : { A -> [*], B -> [B4, D4], C -> [C4, D4], D -> [D4, A4] },
        Round 6 : { * }, Round 7 : { * }, Round 8 : { * } }"""
    assert decide(text, pipeline=False) == [(3, "D", *CI), (6, "C", *CD)]


def test_wave_length_four() -> None:
    # The decision round is r + 3: with rounds up to 8, leaders up to round 5 commit.
    assert decide(full_dag(8), wave_length=4) == [
        (1, "B", *CD),
        (2, "C", *CD),
        (3, "D", *CD),
        (4, "A", *CD),
        (5, "B", *CD),
        (6, "C", *U),
        (7, "D", *U),
        (8, "A", *U),
    ]
    # Without pipelining the leader rounds are 4 and 8.
    assert decide(full_dag(8), wave_length=4, pipeline=False) == [
        (4, "A", *CD),
        (8, "A", *U),
    ]


def test_wave_length_four_anchor_is_a_full_wave_later() -> None:
    # B1 with wave length 4: voting round 2 (D2 skips B1: blame 1), decision round 4.
    # A decision-round block counts the votes among its own ancestors (round 3), each
    # voting for the B1 block it reaches depth-first: all four round-3 blocks reach B1.
    # Only A4 links three of them (B4, C4, D4 link one each): one certificate. The anchor
    # must be at round >= 1 + 4: B5 (decision round 8) commits directly and reaches A4,
    # so B1 commits indirectly.
    text = """DAG { Round 0 : { 4 }, Round 1 : { * },
        Round 2 : { A -> [*], B -> [*], C -> [*], D -> [-B1] },
        Round 3 : { * },
        Round 4 : { A -> [*], B -> [B3], C -> [C3], D -> [D3] },
        Round 5 : { * }, Round 6 : { * }, Round 7 : { * }, Round 8 : { * } }"""
    rows = decide(text, wave_length=4)
    assert rows[0] == (1, "B", *CI)
    assert rows[4] == (5, "B", *CD)


def test_wave_length_below_three_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        decide(full_dag(3), wave_length=2)


# --- the example in docs/consensus.md ----------------------------------------------------------

DOCS_EXAMPLE = """DAG {
    Round 0 : { 4 },
    Round 1 : { * },
    Round 2 : { * },
    Round 3 : { * },
    Round 4 : { A -> [-D3], B -> [*], C -> [*], D -> [*] },
    Round 5 : { A -> [*], B -> [*], C -> [A4], D -> [A4] },
    Round 6 : { * },
}"""


def test_docs_example_as_printed_leaves_d3_undecided() -> None:
    # D3: votes B4, C4, D4; certificates only A5, B5 (C5, D5 link A4 alone). Its anchor
    # must be at round >= 6, and C6 has no decision round (8) in this DAG: undecided.
    # (docs/consensus.md claims D3 is committed through C6; that needs rounds 7 and 8.)
    assert decide(DOCS_EXAMPLE) == [
        (1, "B", *CD),
        (2, "C", *CD),
        (3, "D", *U),
        (4, "A", *CD),  # voted by all of round 5, certified by all of round 6
        (5, "B", *U),
        (6, "C", *U),
    ]


def test_docs_example_with_two_more_rounds_commits_d3_through_c6() -> None:
    text = DOCS_EXAMPLE.replace(
        "Round 6 : { * },", "Round 6 : { * }, Round 7 : { * }, Round 8 : { * },"
    )
    assert decide(text)[:6] == [
        (1, "B", *CD),
        (2, "C", *CD),
        (3, "D", *CI),  # C6 reaches A5 and B5, certificates for D3
        (4, "A", *CD),
        # B5: A6..D6 all link B5 (4 votes), round 7 full: commit.
        (5, "B", *CD),
        (6, "C", *CD),
    ]
