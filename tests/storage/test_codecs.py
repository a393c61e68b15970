"""Codecs: round-trips, order preservation for key codecs, and typed errors."""

from __future__ import annotations

from typing import Any, Self

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma import storage
from soma.storage import (
    RAW_BYTES,
    U8_BE,
    U16_BE,
    U32_BE,
    U64_BE,
    UTF8,
    BcsSerializable,
    FixedBytesCodec,
    StructCodec,
    TupleCodec,
    UIntCodec,
    tuple_codec,
)
from soma.types import bcs
from soma.types.bcs import BcsStruct, u64
from soma.types.error import BcsDecodeError, StorageDecodeError, StorageEncodeError

UINTS = [(U8_BE, 8), (U16_BE, 16), (U32_BE, 32), (U64_BE, 64)]


# --- integers -----------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "bits"), UINTS)
def test_uint_extremes_round_trip(codec: UIntCodec, bits: int) -> None:
    for value in (0, 1, 2 ** (bits - 1), 2**bits - 1):
        encoded = codec.encode(value)
        assert len(encoded) == bits // 8 == codec.width
        assert codec.decode(encoded) == value


def test_uint_is_big_endian() -> None:
    assert U64_BE.encode(1) == b"\x00" * 7 + b"\x01"
    assert U32_BE.encode(0x01020304) == b"\x01\x02\x03\x04"
    assert U16_BE.encode(256) == b"\x01\x00"


@pytest.mark.parametrize(("codec", "bits"), UINTS)
def test_uint_rejects_out_of_range(codec: UIntCodec, bits: int) -> None:
    for bad in (-1, -(2**bits), 2**bits, 2**100):
        with pytest.raises(StorageEncodeError):
            codec.encode(bad)


@pytest.mark.parametrize("bad", ["1", 1.0, None, b"\x01"])
def test_uint_rejects_non_integers(bad: Any) -> None:
    with pytest.raises(StorageEncodeError):
        U64_BE.encode(bad)


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"\x00" * 9])
def test_uint_decode_checks_length(data: bytes) -> None:
    with pytest.raises(StorageDecodeError):
        U64_BE.decode(data)


@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_u64_byte_order_is_numeric_order(a: int, b: int) -> None:
    assert (U64_BE.encode(a) < U64_BE.encode(b)) == (a < b)
    assert U64_BE.decode(U64_BE.encode(a)) == a


@given(st.integers(0, 2**16 - 1), st.integers(0, 2**16 - 1))
def test_u16_byte_order_is_numeric_order(a: int, b: int) -> None:
    assert (U16_BE.encode(a) < U16_BE.encode(b)) == (a < b)


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

OBJECT_VERSION = tuple_codec(FixedBytesCodec(32), U64_BE)


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
    codec = tuple_codec(U8_BE, tuple_codec(U32_BE))
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
    assert RAW_BYTES.encode(b"") == b""
    assert RAW_BYTES.decode(b"\x00\xff") == b"\x00\xff"
    assert type(RAW_BYTES.encode(Digest(b"x"))) is bytes
    with pytest.raises(StorageEncodeError):
        RAW_BYTES.encode("text")  # type: ignore[arg-type]


def test_str_codec() -> None:
    for text in ("", "soma", "ünïcödé ✓", "\x00"):
        assert UTF8.decode(UTF8.encode(text)) == text
    with pytest.raises(StorageEncodeError):
        UTF8.encode("\ud800")  # a lone surrogate has no UTF-8 form
    with pytest.raises(StorageEncodeError):
        UTF8.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(StorageDecodeError):
        UTF8.decode(b"\xff\xfe")


@given(st.text(), st.text())
def test_str_byte_order_is_code_point_order(a: str, b: str) -> None:
    assert (UTF8.encode(a) < UTF8.encode(b)) == (a < b)


class Point:
    """A tiny stand-in for a BCS struct: two u16 fields."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def to_bytes(self) -> bytes:
        return U16_BE.encode(self.x) + U16_BE.encode(self.y)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        if len(data) != 4:
            raise ValueError("a Point is 4 bytes")
        return cls(U16_BE.decode(data[:2]), U16_BE.decode(data[2:]))


def test_struct_codec_round_trip() -> None:
    codec = StructCodec(Point)
    assert codec.encode(Point(1, 2)) == b"\x00\x01\x00\x02"
    assert codec.decode(b"\x00\x01\x00\x02") == Point(1, 2)
    point: BcsSerializable = Point(3, 4)  # Point satisfies the protocol
    assert codec.decode(point.to_bytes()) == point


def test_struct_codec_rejects_other_types() -> None:
    with pytest.raises(StorageEncodeError):
        StructCodec(Point).encode((1, 2))  # type: ignore[arg-type]


def test_struct_codec_reports_unparsable_bytes_as_a_storage_error() -> None:
    """Bytes read back from a database that `from_bytes` rejects mean a corrupt store:
    a `StorageDecodeError` naming the type, chained from the struct's own error."""
    with pytest.raises(StorageDecodeError, match="not a valid Point") as info:
        StructCodec(Point).decode(b"\x00")
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.code == "STORAGE_DECODE"


class Balance(BcsStruct):
    """A real BCS struct, so the codec is exercised against `BcsDecodeError`s."""

    owner: str
    amount: u64


@pytest.mark.parametrize(
    "corrupt",
    [b"", b"\x01", Balance("alice", 7).to_bytes() + b"\x00", b"\x01\xff" + bytes(8)],
    ids=["empty", "truncated", "trailing", "bad-utf8"],
)
def test_struct_codec_wraps_bcs_decode_errors(corrupt: bytes) -> None:
    codec = StructCodec(Balance)
    assert codec.decode(codec.encode(Balance("alice", 7))) == Balance("alice", 7)
    with pytest.raises(StorageDecodeError, match="not a valid Balance") as info:
        codec.decode(corrupt)
    assert isinstance(info.value.__cause__, BcsDecodeError)


def test_storage_names_never_shadow_bcs_names() -> None:
    """`from soma.storage import *` next to `from soma.types.bcs import *` must not
    silently swap a big-endian storage codec for a little-endian wire codec (or back)."""
    assert set(storage.__all__).isdisjoint(bcs.__all__)
    assert U64_BE.encode(1) == b"\x00" * 7 + b"\x01"  # big-endian, unlike bcs.U64


def test_codecs_compare_by_what_they_encode() -> None:
    assert UIntCodec(8) == U64_BE and hash(UIntCodec(8)) == hash(U64_BE)
    assert U64_BE != U32_BE
    assert tuple_codec(FixedBytesCodec(32), U64_BE) == OBJECT_VERSION
    assert FixedBytesCodec(32) != FixedBytesCodec(32, Digest)
    assert StructCodec(Point) == StructCodec(Point)
    assert StructCodec(Point) != RAW_BYTES
    assert UTF8 != RAW_BYTES
