"""The DAG text format: what each construct builds, and typed errors with positions."""

from __future__ import annotations

import pytest

from soma.consensus.dag_builder import DagBuilder
from soma.consensus.dag_text import DagTextError, parse_dag
from soma.types.consensus.block import Slot
from soma.types.error import SomaError

EXAMPLE = """DAG {
    Round 0 : { 4 },
    Round 1 : { * },
    Round 2 : { * },
    Round 3 : { * },
    Round 4 : { A -> [D3], B -> [-D3], C -> [*, A0], D -> [] },
    Round 5 : { A -> [*], B -> [-A4], [2] -> [A4, B4], },
}"""

# The DAG of Sui's `test_dag_parsing` (consensus/core/src/test_dag_parser.rs).
SUI_EXAMPLE = """DAG {
    Round 0 : { 4 },
    Round 1 : { * },
    Round 2 : { * },
    Round 3 : {
        A -> [*],
        B -> [*],
        C -> [*],
        D -> [*],
    },
    Round 4 : {
        A -> [A3, B3, C3],
        B -> [A3, B3, C3],
        C -> [A3, B3, C3],
        D -> [*],
    },
    Round 5 : {
        A -> [*],
        B -> [-A4],
        C -> [-A4],
        D -> [-A4],
    },
    Round 6 : {
        A -> [A3, B3, C3, A1, B1],
        B -> [*, A0],
        C -> [-A5],
    }
}"""


def _links(builder: DagBuilder, round: int, author: int) -> list[tuple[int, int]]:
    """The (round, author) of each ancestor of the single block at the slot, sorted."""
    [block] = builder.blocks_at_slot(Slot(round, author))
    return sorted((ref.round, ref.author) for ref in block.ancestors)


def _slots(builder: DagBuilder) -> list[tuple[int, int]]:
    return sorted((b.round, b.author) for b in builder.all_blocks())


def test_sui_example() -> None:
    builder = parse_dag(SUI_EXAMPLE)
    assert builder.committee_size == 4
    assert len(builder.genesis) == 4
    # Rounds 1-5 have four blocks each, round 6 three: 23 blocks besides genesis.
    assert len(builder.all_blocks()) == 23
    assert len(builder.blocks) == 27
    assert builder.highest_round == 6
    assert _links(builder, 6, 0) == [(1, 0), (1, 1), (3, 0), (3, 1), (3, 2)]  # A3,B3,C3,A1,B1
    assert _links(builder, 6, 1) == [(0, 0), (5, 0), (5, 1), (5, 2), (5, 3)]  # *, A0
    assert _links(builder, 6, 2) == [(5, 1), (5, 2), (5, 3)]  # -A5
    assert builder.blocks_at_slot(Slot(6, 3)) == []
    assert _links(builder, 4, 0) == [(3, 0), (3, 1), (3, 2)]
    assert _links(builder, 4, 3) == [(3, 0), (3, 1), (3, 2), (3, 3)]
    assert _links(builder, 5, 1) == [(4, 1), (4, 2), (4, 3)]
    # An author's own most recent ancestor is listed first.
    [a6] = builder.blocks_at_slot(Slot(6, 0))
    assert (a6.ancestors[0].round, a6.ancestors[0].author) == (3, 0)
    [b6] = builder.blocks_at_slot(Slot(6, 1))
    assert (b6.ancestors[0].round, b6.ancestors[0].author) == (5, 1)


def test_example_blocks_and_links() -> None:
    builder = parse_dag(EXAMPLE)
    assert builder.committee_size == 4
    # 3 full rounds of 4, 4 blocks in round 4, 3 in round 5.
    assert len(builder.all_blocks()) == 12 + 4 + 3
    assert builder.highest_round == 5
    assert _links(builder, 2, 1) == [(1, 0), (1, 1), (1, 2), (1, 3)]
    # A -> [D3]: only D3, not even A's own previous block.
    assert _links(builder, 4, 0) == [(3, 3)]
    # B -> [-D3]: all of round 3 but D3.
    assert _links(builder, 4, 1) == [(3, 0), (3, 1), (3, 2)]
    # C -> [*, A0]: all of round 3 and genesis A.
    assert _links(builder, 4, 2) == [(0, 0), (3, 0), (3, 1), (3, 2), (3, 3)]
    # D -> []: a block with no ancestors.
    assert _links(builder, 4, 3) == []
    # Round 5: `*` is the previous listed round (4); [2] is C.
    assert _links(builder, 5, 0) == [(4, 0), (4, 1), (4, 2), (4, 3)]
    assert _links(builder, 5, 1) == [(4, 1), (4, 2), (4, 3)]
    assert _links(builder, 5, 2) == [(4, 0), (4, 1)]
    # D is absent from round 5.
    assert builder.blocks_at_slot(Slot(5, 3)) == []


def test_genesis_only() -> None:
    builder = parse_dag("DAG { Round 0 : { 4 } }")
    assert builder.all_blocks() == []
    assert builder.highest_round == 0
    assert _slots(parse_dag("DAG{Round 0:{1},Round 1:{*}}")) == [(1, 0)]


def test_full_round_links_every_block_of_the_previous_round() -> None:
    builder = parse_dag("DAG { Round 0 : { 3 }, Round 1 : { * }, Round 2 : { * } }")
    assert _slots(builder) == [(r, a) for r in (1, 2) for a in range(3)]
    for a in range(3):
        assert _links(builder, 1, a) == [(0, 0), (0, 1), (0, 2)]
        assert _links(builder, 2, a) == [(1, 0), (1, 1), (1, 2)]


def test_star_after_a_gap_links_the_previous_listed_round() -> None:
    builder = parse_dag("DAG { Round 0 : { 3 }, Round 1 : { * }, Round 5 : { * } }")
    assert _links(builder, 5, 0) == [(1, 0), (1, 1), (1, 2)]
    assert builder.blocks_at_slot(Slot(3, 0)) == []


def test_star_links_only_the_blocks_that_exist_in_the_previous_round() -> None:
    builder = parse_dag(
        "DAG { Round 0 : { 4 }, Round 1 : { A -> [*], C -> [*] }, Round 2 : { B -> [*] } }"
    )
    assert _slots(builder) == [(1, 0), (1, 2), (2, 1)]
    assert _links(builder, 2, 1) == [(1, 0), (1, 2)]


def test_exclusion() -> None:
    builder = parse_dag("DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { A -> [-C1] } }")
    assert _links(builder, 2, 0) == [(1, 0), (1, 1), (1, 3)]


def test_several_exclusions_combine() -> None:
    builder = parse_dag("DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { A -> [-B1, -C1] } }")
    assert _links(builder, 2, 0) == [(1, 0), (1, 3)]


def test_exclusion_plus_an_older_block() -> None:
    builder = parse_dag(
        "DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * }, Round 3 : { A -> [-C2, C1] } }"
    )
    assert _links(builder, 3, 0) == [(1, 2), (2, 0), (2, 1), (2, 3)]


def test_named_slots_from_any_earlier_round() -> None:
    builder = parse_dag(
        "DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { * }, Round 3 : { * },"
        " Round 4 : { B -> [A3, D1, C0, B2] } }"
    )
    assert _links(builder, 4, 1) == [(0, 2), (1, 3), (2, 1), (3, 0)]


def test_commas_and_whitespace_are_optional() -> None:
    compact = parse_dag("DAG{Round 0:{4}Round 1:{*}Round 2:{A->[A1 B1]B->[-A1]}}")
    spaced = parse_dag(
        "DAG {\n\tRound 0 : { 4 },\r\n  Round 1 : { * },\n"
        "  Round 2 : {\n    A -> [A1, B1,],\n    B -> [-A1],\n  },\n}\n"
    )
    for builder in (compact, spaced):
        assert _links(builder, 2, 0) == [(1, 0), (1, 1)]
        assert _links(builder, 2, 1) == [(1, 1), (1, 2), (1, 3)]


def test_index_authorities_beyond_z() -> None:
    builder = parse_dag("DAG { Round 0 : { 28 }, Round 1 : { [27] -> [*], A -> [[27]0] } }")
    assert builder.committee_size == 28
    assert len(_links(builder, 1, 27)) == 28
    assert _links(builder, 1, 0) == [(0, 27)]  # explicit slots only
    builder = parse_dag(
        "DAG { Round 0 : { 27 }, Round 1 : { * }, Round 2 : { [26] -> [-[26]1, -A1] } }"
    )
    assert _links(builder, 2, 26) == [(1, a) for a in range(1, 26)]


def test_index_and_letter_name_the_same_authority() -> None:
    builder = parse_dag("DAG { Round 0 : { 4 }, Round 1 : { [1] -> [[2]0, C0], D -> [B0] } }")
    assert _links(builder, 1, 1) == [(0, 2)]  # [2]0 and C0 are one block
    assert _links(builder, 1, 3) == [(0, 1)]


def test_blocks_are_unsigned_and_deterministic() -> None:
    first = parse_dag(EXAMPLE)
    second = parse_dag(EXAMPLE)
    assert [b.reference() for b in first.all_blocks()] == [
        b.reference() for b in second.all_blocks()
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # Syntax.
        ("", "expected DAG, found the end at line 1, column 1"),
        ("DAG Round 0 : { 4 } }", "expected {, found 'Round' at line 1, column 5"),
        ("DAG { Round 1 : { * } }", "the first round must be Round 0 at line 1, column 15"),
        ("DAG { Round 0 : { * } }", "expected number, found '*' at line 1, column 19"),
        ("DAG { Round 0 : { 4 }, Round 1 : { A -> [*] ", "found the end at line 1, column 45"),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A => [*] } }",
            "unexpected character at line 1, column 38",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { a -> [*] } }",
            "unexpected character at line 1, column 36",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> * } }",
            "expected [, found '*' at line 1, column 41",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> [A] } }",
            "expected slot, found 'A' at line 1, column 42",
        ),
        ("DAG { Round 0 : { 4 }, Round 1 : { * } } x", "unexpected character at line 1, column 42"),
        ("DAG { Round 0 : { 4 } } DAG", "unexpected text after the DAG at line 1, column 25"),
        # Rounds.
        ("DAG { Round 0 : { 4 }, Round 2 : { * }, Round 1 : { * } }", "round 1 does not follow 2"),
        (
            "DAG { Round 0 : { 4 }, Round 0 : { * } }",
            "round 0 does not follow 0 at line 1, column 30",
        ),
        ("DAG { Round 0 : { 0 } }", "at least one authority"),
        # Authorities.
        (
            "DAG { Round 0 : { 4 }, Round 1 : { E -> [*] } }",
            "authority 4 is outside the committee at line 1, column 36",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { [4] -> [*] } }",
            "authority 4 is outside the committee",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> [E0] } }",
            "authority 4 is outside the committee at line 1, column 42",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> [-[9]0] } }",
            "authority 9 is outside the committee",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> [*], A -> [*] } }",
            "authority 0 appears twice in round 1 at line 1, column 46",
        ),
        # Slots that hold no block.
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> [B7] } }",
            "no block at slot B7 to link at line 1, column 42",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> [*] }, Round 2 : { A -> [B1] } }",
            "no block at slot B1",
        ),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A -> [*] }, Round 2 : { A -> [A2] } }",
            "no block at slot A2",
        ),
    ],
)
def test_malformed_text_is_a_typed_error_with_a_position(text: str, fragment: str) -> None:
    with pytest.raises(DagTextError) as info:
        parse_dag(text)
    message = str(info.value)
    assert "line" in message and "column" in message
    assert fragment in message


def test_errors_are_soma_errors_with_a_stable_code() -> None:
    with pytest.raises(SomaError) as info:
        parse_dag("DAG { Round 0 : { 4 }, Round 1 : { Z -> [*] } }")
    assert isinstance(info.value, DagTextError)
    assert info.value.code == "DAG_TEXT"
    assert info.value.to_dict() == {
        "code": "DAG_TEXT",
        "message": "authority 25 is outside the committee at line 1, column 36",
    }


def test_error_position_counts_lines_and_columns() -> None:
    text = "DAG {\n  Round 0 : { 4 },\n  Round 1 : { * },\n  Round 2 : { A -> [*, Q1] }\n}"
    with pytest.raises(DagTextError) as info:
        parse_dag(text)
    assert info.value.message == "authority 16 is outside the committee at line 4, column 24"
    text = "DAG {\n  Round 0 : { 4 },\n  Round 1 : {\n    B -> [*]\n    B -> [*]\n  }\n}"
    with pytest.raises(DagTextError) as info:
        parse_dag(text)
    assert info.value.message == "authority 1 appears twice in round 1 at line 5, column 5"


def test_a_link_to_a_block_of_the_same_round_is_refused() -> None:
    # Listed after A, `B2` is an error ("no block at slot B2"); listed before A, A2
    # silently gets an ancestor in its own round.
    with pytest.raises(DagTextError):
        parse_dag("DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { A -> [B2], B -> [*] } }")
    with pytest.raises(DagTextError):
        parse_dag("DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { B -> [*], A -> [B2] } }")
