"""Codecs: round-trips, order preservation for key codecs, and typed errors."""

from __future__ import annotations

from typing import Any, Self

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma.storage import (
    BYTES,
    STR,
    U8,
    U16,
    U32,
    U64,
    BcsSerializable,
    FixedBytesCodec,
    StructCodec,
    TupleCodec,
    UIntCodec,
    tuple_codec,
)
from soma.types.error import StorageDecodeError, StorageEncodeError

UINTS = [(U8, 8), (U16, 16), (U32, 32), (U64, 64)]


# --- integers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "bits"), UINTS)
def test_uint_extremes_round_trip(codec: UIntCodec, bits: int) -> None:
    for value in (0, 1, 2 ** (bits - 1), 2**bits - 1):
        encoded = codec.encode(value)
        assert len(encoded) == bits // 8 == codec.width
        assert codec.decode(encoded) == value


def test_uint_is_big_endian() -> None:
    assert U64.encode(1) == b"\x00" * 7 + b"\x01"
    assert U32.encode(0x01020304) == b"\x01\x02\x03\x04"
    assert U16.encode(256) == b"\x01\x00"


@pytest.mark.parametrize(("codec", "bits"), UINTS)
def test_uint_rejects_out_of_range(codec: UIntCodec, bits: int) -> None:
    for bad in (-1, -(2**bits), 2**bits, 2**100):
        with pytest.raises(StorageEncodeError):
            codec.encode(bad)


@pytest.mark.parametrize("bad", ["1", 1.0, None, b"\x01"])
def test_uint_rejects_non_integers(bad: Any) -> None:
    with pytest.raises(StorageEncodeError):
        U64.encode(bad)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\x00" * 9])
def test_uint_decode_checks_length(data: bytes) -> None:
    with pytest.raises(StorageDecodeError):
        U64.decode(data)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_u64_byte_order_is_numeric_order(a: int, b: int) -> None:
    assert (U64.encode(a) < U64.encode(b)) == (a < b)
    assert U64.decode(U64.encode(a)) == a


@given(st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1))
def test_u16_byte_order_is_numeric_order(a: int, b: int) -> None:
    assert (U16.encode(a) < U16.encode(b)) == (a < b)


def test_uint_width_must_be_positive() -> None:
    with pytest.raises(ValueError):
        UIntCodec(0)


# --- fixed bytes --------------------------------------------------------------------------


def test_fixed_bytes_checks_length() -> None:
    codec = FixedBytesCodec(4)
    assert codec.encode(b"abcd") == b"abcd"
    assert codec.decode(b"abcd") == b"abcd"
    for bad in (b"", b"abc", b"abcde"):
        with pytest.raises(StorageEncodeError):
            codec.encode(bad)
        with pytest.raises(StorageDecodeError):
            codec.decode(bad)
    with pytest.raises(StorageEncodeError):
        codec.encode("abcd")  # type: ignore[arg-type]
    with pytest.raises(StorageEncodeError):
        codec.encode(bytearray(b"abcd"))  # type: ignore[arg-type]


class Digest(bytes):
    """Stands in for the project's 32-byte ID types (bytes subclasses)."""


def test_fixed_bytes_factory_rebuilds_the_callers_type() -> None:
    codec = FixedBytesCodec(32, Digest)
    value = Digest(b"\x07" * 32)
    encoded = codec.encode(value)
    assert type(encoded) is bytes and encoded == value
    decoded = codec.decode(encoded)
    assert type(decoded) is Digest and decoded == value


# --- composite keys -----------------------------------------------------------------------

OBJECT_VERSION = tuple_codec(FixedBytesCodec(32), U64)


def test_tuple_codec_round_trip_and_layout() -> None:
    key = (b"\xab" * 32, 7)
    encoded = OBJECT_VERSION.encode(key)
    assert encoded == b"\xab" * 32 + (7).to_bytes(8, "big")
    assert OBJECT_VERSION.width == 40
    assert OBJECT_VERSION.decode(encoded) == key


@given(
    st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1)),
    st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1)),
)
def test_tuple_byte_order_is_tuple_order(a: tuple[bytes, int], b: tuple[bytes, int]) -> None:
    assert (OBJECT_VERSION.encode(a) < OBJECT_VERSION.encode(b)) == (a < b)


@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 2**32 - 1)), min_size=2))
def test_nested_tuple_codecs_sort_like_tuples(items: list[tuple[int, int]]) -> None:
    codec = tuple_codec(U8, tuple_codec(U32))
    keys = [(a, (b,)) for a, b in items]
    assert sorted(keys, key=codec.encode) == sorted(keys)


@pytest.mark.parametrize(
    "bad",
    [
        (b"\x00" * 31, 1),
        (b"\x00" * 32, -1),
        (b"\x00" * 32, 2**64),
        (b"\x00" * 32,),
        (b"\x00" * 32, 1, 2),
        [b"\x00" * 32, 1],
        "not a tuple",
    ],
)
def test_tuple_codec_rejects_bad_keys(bad: Any) -> None:
    with pytest.raises(StorageEncodeError):
        OBJECT_VERSION.encode(bad)


def test_tuple_codec_decode_checks_length() -> None:
    with pytest.raises(StorageDecodeError):
        OBJECT_VERSION.decode(b"\x00" * 39)


def test_tuple_codec_needs_parts() -> None:
    with pytest.raises(ValueError):
        TupleCodec()


# --- values -------------------------------------------------------------------------------


def test_bytes_codec() -> None:
    assert BYTES.encode(b"") == b""
    assert BYTES.decode(b"\x00\xff") == b"\x00\xff"
    assert type(BYTES.encode(Digest(b"x"))) is bytes
    with pytest.raises(StorageEncodeError):
        BYTES.encode("text")  # type: ignore[arg-type]


def test_str_codec() -> None:
    for text in ("", "soma", "ünïcödé ✓", "\x00"):
        assert STR.decode(STR.encode(text)) == text
    with pytest.raises(StorageEncodeError):
        STR.encode("\ud800")  # a lone surrogate has no UTF-8 form
    with pytest.raises(StorageEncodeError):
        STR.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(StorageDecodeError):
        STR.decode(b"\xff\xfe")


@given(st.text(), st.text())
def test_str_byte_order_is_code_point_order(a: str, b: str) -> None:
    assert (STR.encode(a) < STR.encode(b)) == (a < b)


class Point:
    """A tiny stand-in for a BCS struct: two u16 fields."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def to_bytes(self) -> bytes:
        return U16.encode(self.x) + U16.encode(self.y)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) != 4:
            raise ValueError("a Point is 4 bytes")
        return cls(U16.decode(data[:2]), U16.decode(data[2:]))


def test_struct_codec_round_trip() -> None:
    codec = StructCodec(Point)
    assert codec.encode(Point(1, 2)) == b"\x00\x01\x00\x02"
    assert codec.decode(b"\x00\x01\x00\x02") == Point(1, 2)
    point: BcsSerializable = Point(3, 4)  # Point satisfies the protocol
    assert codec.decode(point.to_bytes()) == point


def test_struct_codec_rejects_other_types_and_propagates_decode_errors() -> None:
    codec = StructCodec(Point)
    with pytest.raises(StorageEncodeError):
        codec.encode((1, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        codec.decode(b"\x00")


def test_codecs_compare_by_what_they_encode() -> None:
    assert UIntCodec(8) == U64 and hash(UIntCodec(8)) == hash(U64)
    assert U64 != U32
    assert tuple_codec(FixedBytesCodec(32), U64) == OBJECT_VERSION
    assert FixedBytesCodec(32) != FixedBytesCodec(32, Digest)
    assert StructCodec(Point) == StructCodec(Point)
    assert StructCodec(Point) != BYTES
    assert STR != BYTES
