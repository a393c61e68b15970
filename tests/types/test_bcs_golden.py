"""Golden byte vectors: the examples published in the BCS specification (the README of
the diem/bcs crate), each checked in both directions."""

from __future__ import annotations

from typing import Any

import pytest

from soma.types import bcs
from soma.types.bcs import BcsEnum, BcsStruct, u8, u16


class MyStruct(BcsStruct):
    boolean: bool
    bytes_: bytes
    label: str


class Wrapper(BcsStruct):
    inner: MyStruct
    name: str


class E(BcsEnum):
    pass


class Variant0(E, tag=0):
    value: u16


class Variant1(E, tag=1):
    value: u8


class Variant2(E, tag=2):
    value: str


UTF8 = "çå∞≠¢õß∂ƒ∫"
UTF8_BYTES = bytes.fromhex(
    "18"  # length 24
    "c3a7c3a5e2889ee289a0c2a2c3b5c39fe28882c692e288ab"
)

# (id, codec, value, expected bytes) -- from the specification's tables and examples.
GOLDEN: list[tuple[str, bcs.Codec[Any], Any, bytes]] = [
    ("bool-true", bcs.BOOL, True, bytes([0x01])),
    ("bool-false", bcs.BOOL, False, bytes([0x00])),
    ("i8", bcs.I8, -1, bytes([0xFF])),
    ("u8", bcs.U8, 1, bytes([0x01])),
    ("i16", bcs.I16, -4660, bytes([0xCC, 0xED])),
    ("u16", bcs.U16, 4660, bytes([0x34, 0x12])),
    ("i32", bcs.I32, -305419896, bytes([0x88, 0xA9, 0xCB, 0xED])),
    ("u32", bcs.U32, 305419896, bytes([0x78, 0x56, 0x34, 0x12])),
    (
        "i64",
        bcs.I64,
        -1311768467750121216,
        bytes([0x00, 0x11, 0x32, 0x54, 0x87, 0xA9, 0xCB, 0xED]),
    ),
    (
        "u64",
        bcs.U64,
        1311768467750121216,
        bytes([0x00, 0xEF, 0xCD, 0xAB, 0x78, 0x56, 0x34, 0x12]),
    ),
    ("uleb-1", bcs.ULEB128, 1, bytes([0x01])),
    ("uleb-2^7", bcs.ULEB128, 2**7, bytes([0x80, 0x01])),
    ("uleb-2^14", bcs.ULEB128, 2**14, bytes([0x80, 0x80, 0x01])),
    ("uleb-2^21", bcs.ULEB128, 2**21, bytes([0x80, 0x80, 0x80, 0x01])),
    ("uleb-2^28", bcs.ULEB128, 2**28, bytes([0x80, 0x80, 0x80, 0x80, 0x01])),
    ("uleb-9487", bcs.ULEB128, 9487, bytes([0x8F, 0x4A])),
    ("option-some", bcs.Option(bcs.U8), 8, bytes([1, 8])),
    ("option-none", bcs.Option(bcs.U8), None, bytes([0])),
    ("fixed-array", bcs.Array(bcs.U16, 3), (1, 2, 3), bytes([1, 0, 2, 0, 3, 0])),
    ("vec-u16", bcs.Vec(bcs.U16), (1, 2), bytes([2, 1, 0, 2, 0])),
    ("vec-unit-9487", bcs.Vec(bcs.UNIT), (None,) * 9487, bytes([0x8F, 0x4A])),
    ("utf8-string", bcs.STR, UTF8, UTF8_BYTES),
    ("tuple", bcs.Tuple(bcs.I8, bcs.STR), (-1, "diem"), bytes([0xFF, 4]) + b"diem"),
    (
        "struct",
        MyStruct.bcs_codec(),
        MyStruct(True, bytes([0xC0, 0xDE]), "a"),
        bytes([1, 2, 0xC0, 0xDE, 1]) + b"a",
    ),
    (
        "nested-struct",
        Wrapper.bcs_codec(),
        Wrapper(MyStruct(True, bytes([0xC0, 0xDE]), "a"), "b"),
        bytes([1, 2, 0xC0, 0xDE, 1]) + b"a" + bytes([1]) + b"b",
    ),
    ("enum-variant0", E.bcs_codec(), Variant0(8000), bytes([0, 0x40, 0x1F])),
    ("enum-variant1", E.bcs_codec(), Variant1(255), bytes([1, 0xFF])),
    ("enum-variant2", E.bcs_codec(), Variant2("e"), bytes([2, 1]) + b"e"),
    (
        "map",
        bcs.Map(bcs.U8, bcs.U8),
        {ord("e"): ord("f"), ord("a"): ord("b"), ord("c"): ord("d")},
        bytes([3]) + b"abcdef",
    ),
]


@pytest.mark.parametrize(
    ("codec", "value", "expected"), [g[1:] for g in GOLDEN], ids=[g[0] for g in GOLDEN]
)
def test_golden_vector(codec: bcs.Codec[Any], value: Any, expected: bytes) -> None:
    assert bcs.encode(value, codec) == expected
    assert bcs.decode(expected, codec) == value


def test_there_are_at_least_ten_golden_vectors() -> None:
    assert len(GOLDEN) >= 10


def test_map_encoding_equals_sorted_pairs() -> None:
    """The specification states a map encodes as its sorted vector of pairs."""
    mapping = {ord("e"): ord("f"), ord("a"): ord("b"), ord("c"): ord("d")}
    pairs = sorted(mapping.items())
    as_map = bcs.encode(mapping, bcs.Map(bcs.U8, bcs.U8))
    as_pairs = bcs.encode(tuple(pairs), bcs.Vec(bcs.Tuple(bcs.U8, bcs.U8)))
    assert as_map == as_pairs


def test_wrapper_starts_with_inner_struct() -> None:
    inner = MyStruct(True, bytes([0xC0, 0xDE]), "a")
    assert Wrapper(inner, "b").to_bytes().startswith(inner.to_bytes())


def test_wide_integers_little_endian() -> None:
    assert bcs.encode(1, bcs.U128) == bytes([1]) + bytes(15)
    assert bcs.encode(2**256 - 1, bcs.U256) == bytes([0xFF]) * 32
    assert bcs.encode(-2, bcs.I128) == bytes([0xFE]) + bytes([0xFF]) * 15
