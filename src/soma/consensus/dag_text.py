"""The DAG text format (the one Sui's consensus tests use), for tests and `soma dag`.

    DAG {
        Round 0 : { 4 },
        Round 1 : { * },
        Round 2 : { A -> [*], B -> [-A1], C -> [A1, B1, C1], },
        Round 3 : { A -> [*], B -> [*, A0], D -> [] },
    }

* `Round 0 : { N }` comes first and makes the N genesis blocks (authorities A, B, ...).
* `Round r : { * }` gives every authority a block at r linking every block of the
  previous listed round.
* Otherwise each `X -> [...]` line gives authority X a block at r; an authority absent
  from the list has no block in that round. In the brackets, `*` links every block of the
  previous listed round, `-Y3` all of those but the block(s) at slot Y3 (several
  exclusions combine: `[-A3, -B3]` is all but A3 and B3), and `Y3` the block(s) at slot
  Y3 (any earlier round). Authorities are single capital letters (A is
  index 0) or `[26]` by index, in authors and in slots alike. Commas after entries are
  optional.

Blocks built from text need not satisfy the block verifier: they exist to put the
committer in front of an exact DAG shape. Malformed text raises `DagTextError` naming
the line and column.
"""

from __future__ import annotations

import re

from soma.consensus.dag_builder import DagBuilder
from soma.types.consensus.block import BlockRef, Slot
from soma.types.error import SomaError


class DagTextError(SomaError):
    """Text that is not a well-formed DAG description."""

    code = "DAG_TEXT"


_TOKEN = re.compile(
    r"\s*(?:(?P<word>DAG|Round)\b|(?P<number>\d+)|(?P<slot>-?(?:[A-Z]|\[\d+\])\d+)"
    r"|(?P<author>[A-Z]|\[\d+\])|(?P<arrow>->)|(?P<sym>[{}\[\]:,*]))"
)


class _Tokens:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise self._error("unexpected character", pos + _leading_space(text, pos))
            kind = match.lastgroup
            assert kind is not None
            self.items.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.index = 0

    def _error(self, message: str, offset: int) -> DagTextError:
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return DagTextError(f"{message} at line {line}, column {column}")

    def peek(self) -> tuple[str, str, int] | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def take(self, kind: str, value: str | None = None) -> str:
        item = self.peek()
        if item is None:
            raise self._error(f"expected {value or kind}, found the end", len(self.text))
        if item[0] != kind or (value is not None and item[1] != value):
            raise self._error(f"expected {value or kind}, found {item[1]!r}", item[2])
        self.index += 1
        return item[1]

    def accept(self, kind: str, value: str | None = None) -> bool:
        item = self.peek()
        if item is not None and item[0] == kind and (value is None or item[1] == value):
            self.index += 1
            return True
        return False

    def offset(self) -> int:
        item = self.peek()
        return item[2] if item is not None else len(self.text)


def _leading_space(text: str, pos: int) -> int:
    return len(text[pos:]) - len(text[pos:].lstrip())


def _authority(token: str) -> int:
    return int(token[1:-1]) if token.startswith("[") else ord(token) - ord("A")


def _slot(token: str) -> Slot:
    match = re.fullmatch(r"(\[\d+\]|[A-Z])(\d+)", token)
    assert match is not None
    return Slot(int(match.group(2)), _authority(match.group(1)))


def parse_dag(text: str) -> DagBuilder:
    """Build the DAG `text` describes."""
    tokens = _Tokens(text)
    tokens.take("word", "DAG")
    tokens.take("sym", "{")
    tokens.take("word", "Round")
    if tokens.take("number") != "0":
        raise tokens._error("the first round must be Round 0", tokens.offset())
    tokens.take("sym", ":")
    tokens.take("sym", "{")
    size = int(tokens.take("number"))
    if size < 1:
        raise tokens._error("a DAG needs at least one authority", tokens.offset())
    tokens.take("sym", "}")
    tokens.accept("sym", ",")
    builder = DagBuilder(size)
    previous_round = 0
    while tokens.accept("word", "Round"):
        at = tokens.offset()
        round_number = int(tokens.take("number"))
        if round_number <= previous_round:
            raise tokens._error(f"round {round_number} does not follow {previous_round}", at)
        previous_round = round_number
        tokens.take("sym", ":")
        tokens.take("sym", "{")
        if tokens.accept("sym", "*"):
            tokens.take("sym", "}")
            builder.layer(round_number)
        else:
            _parse_round(tokens, builder, round_number)
        tokens.accept("sym", ",")
    tokens.take("sym", "}")
    if tokens.peek() is not None:
        raise tokens._error("unexpected text after the DAG", tokens.offset())
    return builder


def _parse_round(tokens: _Tokens, builder: DagBuilder, round_number: int) -> None:
    made: list[BlockRef] = []
    seen: set[int] = set()
    while not tokens.accept("sym", "}"):
        at = tokens.offset()
        author = _authority(tokens.take("author"))
        if author >= builder.committee_size:
            raise tokens._error(f"authority {author} is outside the committee", at)
        if author in seen:
            raise tokens._error(f"authority {author} appears twice in round {round_number}", at)
        seen.add(author)
        tokens.take("arrow")
        tokens.take("sym", "[")
        everything = False  # `*` or any `-Y3`: start from the whole previous round
        excluded: set[Slot] = set()
        named: list[BlockRef] = []
        while not tokens.accept("sym", "]"):
            at = tokens.offset()
            if tokens.accept("sym", "*"):
                everything = True
            else:
                token = tokens.take("slot")
                slot = _checked_slot(tokens, builder, token.lstrip("-"), at)
                if token.startswith("-"):
                    everything = True
                    excluded.add(slot)
                else:
                    named += _blocks_at(tokens, builder, slot, round_number, at)
            tokens.accept("sym", ",")
        tokens.accept("sym", ",")
        links = [r for r in builder.last_ancestors if r.slot() not in excluded]
        block = builder.add_block(round_number, author, (links if everything else []) + named)
        made.append(block.reference())
    builder.last_ancestors = made


def _checked_slot(tokens: _Tokens, builder: DagBuilder, token: str, at: int) -> Slot:
    slot = _slot(token)
    if slot.authority >= builder.committee_size:
        raise tokens._error(f"authority {slot.authority} is outside the committee", at)
    return slot


def _blocks_at(
    tokens: _Tokens, builder: DagBuilder, slot: Slot, round_number: int, at: int
) -> list[BlockRef]:
    # Only earlier rounds can be linked: a block of the round being defined does not exist
    # yet as far as the format is concerned, whatever order the round lists its blocks in.
    found = (
        [b.reference() for b in builder.blocks_at_slot(slot)] if slot.round < round_number else []
    )
    if not found:
        raise tokens._error(f"no block at slot {slot} to link", at)
    return found
