"""The DAG text format: what each construct builds, and typed errors with positions."""

from __future__ import annotations

import pytest

from soma.consensus.dag_text import DagTextError, parse_dag
from soma.types.consensus.block import Slot

EXAMPLE = """DAG {
    Round 0 : { 4 },
    Round 1 : { * },
    Round 2 : { * },
    Round 3 : { * },
    Round 4 : { A -> [D3], B -> [-D3], C -> [*, A0], D -> [] },
    Round 5 : { A -> [*], B -> [-A4], [2] -> [A4, B4], },
}"""


def _links(builder, round: int, author: int) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    [block] = builder.blocks_at_slot(Slot(round, author))
    return sorted((ref.round, ref.author) for ref in block.ancestors)


def test_example_blocks_and_links() -> None:
    builder = parse_dag(EXAMPLE)
    assert builder.committee_size == 4
    # 4 genesis + 3 full rounds of 4 + 4 in round 4 + 3 in round 5.
    assert len(builder.all_blocks()) == 12 + 4 + 3
    assert builder.highest_round == 5
    assert _links(builder, 2, 1) == [(1, 0), (1, 1), (1, 2), (1, 3)]
    # A -> [D3] (plus nothing else).
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


def test_own_previous_block_comes_first() -> None:
    builder = parse_dag(EXAMPLE)
    [block] = builder.blocks_at_slot(Slot(4, 2))
    assert (block.ancestors[0].round, block.ancestors[0].author) == (3, 2)


def test_star_after_a_gap_links_the_previous_listed_round() -> None:
    builder = parse_dag("DAG { Round 0 : { 3 }, Round 1 : { * }, Round 5 : { * } }")
    assert _links(builder, 5, 0) == [(1, 0), (1, 1), (1, 2)]
    assert builder.blocks_at_slot(Slot(3, 0)) == []


def test_several_exclusions_combine() -> None:
    builder = parse_dag("DAG { Round 0 : { 4 }, Round 1 : { * }, Round 2 : { A -> [-B1, -C1] } }")
    assert _links(builder, 2, 0) == [(1, 0), (1, 3)]


def test_index_authorities_beyond_z() -> None:
    builder = parse_dag("DAG { Round 0 : { 28 }, Round 1 : { [27] -> [*], A -> [[27]0] } }")
    assert builder.committee_size == 28
    assert len(_links(builder, 1, 27)) == 28
    assert _links(builder, 1, 0) == [(0, 27)]  # explicit slots only


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "expected DAG, found the end at line 1, column 1"),
        ("DAG { Round 1 : { * } }", "must be Round 0 at line 1, column 15"),
        ("DAG { Round 0 : { 4 }, Round 1 : { E -> [*] } }", "outside the committee"),
        ("DAG { Round 0 : { 4 }, Round 1 : { A -> [B7] } }", "no block at slot B7"),
        ("DAG { Round 0 : { 4 }, Round 1 : { A -> [*] ", "found the end"),
        (
            "DAG { Round 0 : { 4 }, Round 1 : { A => [*] } }",
            "unexpected character at line 1, column 38",
        ),
        ("DAG { Round 0 : { 4 }, Round 2 : { * }, Round 1 : { * } }", "round 1 does not follow 2"),
        ("DAG { Round 0 : { 4 }, Round 1 : { A -> [*], A -> [*] } }", "appears twice"),
        ("DAG { Round 0 : { 0 } }", "at least one authority"),
    ],
)
def test_malformed_text_is_a_typed_error_with_a_position(text: str, fragment: str) -> None:
    with pytest.raises(DagTextError) as info:
        parse_dag(text)
    message = str(info.value)
    assert "line" in message and "column" in message
    assert fragment in message


def test_error_position_points_at_the_fault() -> None:
    text = "DAG {\n  Round 0 : { 4 },\n  Round 1 : { A -> [Q1] }\n}"
    with pytest.raises(DagTextError) as info:
        parse_dag(text)
    assert "line 3" in str(info.value)
