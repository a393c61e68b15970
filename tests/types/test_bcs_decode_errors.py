"""Every way decoding must reject its input, each with its own SomaError subclass.

Bytes from peers and users are untrusted: a decoder that raised IndexError or
struct.error (or, worse, accepted a second encoding of a value) would let a malformed
message crash a handler or make two nodes hash different bytes for one value.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.types import bcs
from soma.types.bcs import BcsEnum, BcsStruct, u8, u64
from soma.types.effects import TransactionEffects
from soma.types.error import (
    BcsDecodeError,
    BcsEncodeError,
    IntegerOutOfRangeError,
    InvalidBoolError,
    InvalidOptionTagError,
    InvalidUtf8Error,
    InvalidValueError,
    NonCanonicalMapError,
    NonCanonicalUlebError,
    SomaError,
    TrailingBytesError,
    UnexpectedEndError,
    UnknownEnumTagError,
)
from soma.types.object import Owner
from soma.types.transaction import SignedTransaction, TransactionData


class Pair(BcsStruct):
    a: u64
    b: bool


class Shape(BcsEnum):
    pass


class Circle(Shape, tag=0):
    radius: u8


class Square(Shape, tag=1):
    side: u8


# --- trailing bytes ----------------------------------------------------------------


def test_trailing_bytes_after_primitive() -> None:
    with pytest.raises(TrailingBytesError):
        bcs.decode(b"\x01\x00", bcs.U8)


def test_trailing_bytes_after_struct() -> None:
    data = Pair(7, True).to_bytes() + b"\x00"
    with pytest.raises(TrailingBytesError):
        Pair.from_bytes(data)


# --- non-canonical ULEB128 -----------------------------------------------------------


@pytest.mark.parametrize("data", [b"\x80\x00", b"\x81\x00", b"\xff\x80\x00", b"\x80\x80\x80\x00"])
def test_non_canonical_uleb128(data: bytes) -> None:
    with pytest.raises(NonCanonicalUlebError):
        bcs.decode(data, bcs.ULEB128)


def test_non_canonical_length_prefix_of_bytes() -> None:
    # Length 1 written as 0x81 0x00 instead of 0x01.
    with pytest.raises(NonCanonicalUlebError):
        bcs.decode(b"\x81\x00x", bcs.BYTES)


def test_non_canonical_enum_tag() -> None:
    with pytest.raises(NonCanonicalUlebError):
        Shape.from_bytes(b"\x80\x00\x05")


# --- lengths past the end ------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "data"),
    [
        (bcs.BYTES, b"\x05abc"),
        (bcs.STR, b"\x03ab"),
        (bcs.Vec(bcs.U64), b"\x02" + bytes(8)),
        (bcs.Vec(bcs.U8), b"\xff\xff\xff\x07"),  # 2^31 - 1 elements claimed, none given
        (bcs.Map(bcs.U8, bcs.U8), b"\x02\x01\x02"),
        (bcs.U64, bytes(7)),
        (bcs.U128, bytes(15)),
        (bcs.FixedBytes(32), bytes(31)),
        (bcs.Array(bcs.U16, 3), bytes(5)),
        (bcs.ULEB128, b"\x80"),
        (bcs.ULEB128, b""),
        (bcs.BOOL, b""),
        (bcs.Option(bcs.U8), b""),
        (bcs.Option(bcs.U8), b"\x01"),
    ],
)
def test_unexpected_end(codec: bcs.Codec[Any], data: bytes) -> None:
    with pytest.raises(UnexpectedEndError):
        bcs.decode(data, codec)


def test_truncated_struct() -> None:
    data = Pair(7, True).to_bytes()
    for cut in range(len(data)):
        with pytest.raises(UnexpectedEndError):
            Pair.from_bytes(data[:cut])


def test_vector_of_zero_sized_values_is_capped() -> None:
    with pytest.raises(IntegerOutOfRangeError):
        bcs.decode(b"\xff\xff\xff\x07", bcs.Vec(bcs.UNIT))


# --- unknown enum tag ----------------------------------------------------------------


def test_unknown_enum_tag() -> None:
    with pytest.raises(UnknownEnumTagError):
        Shape.from_bytes(b"\x02\x05")


def test_unknown_large_enum_tag() -> None:
    with pytest.raises(UnknownEnumTagError):
        Shape.from_bytes(b"\x80\x01\x05")


def test_unknown_int_enum_value() -> None:
    from soma.types.intent import Intent

    with pytest.raises(UnknownEnumTagError):
        Intent.from_bytes(b"\x63\x00\x00")


def test_unknown_owner_variant() -> None:
    with pytest.raises(UnknownEnumTagError):
        Owner.from_bytes(b"\x07")


# --- bool and option tags ------------------------------------------------------------


@pytest.mark.parametrize("byte", [2, 3, 0x7F, 0x80, 0xFF])
def test_bool_byte_other_than_0_or_1(byte: int) -> None:
    with pytest.raises(InvalidBoolError):
        bcs.decode(bytes([byte]), bcs.BOOL)
    with pytest.raises(InvalidBoolError):
        Pair.from_bytes(bytes(8) + bytes([byte]))


@pytest.mark.parametrize("byte", [2, 0xFF])
def test_option_tag_other_than_0_or_1(byte: int) -> None:
    with pytest.raises(InvalidOptionTagError):
        bcs.decode(bytes([byte, 1]), bcs.Option(bcs.U8))


# --- invalid UTF-8 -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",
        b"\xc3",  # truncated two-byte sequence
        b"\xc0\xaf",  # overlong '/'
        b"\xed\xa0\x80",  # UTF-16 surrogate
        b"\xf4\x90\x80\x80",  # above U+10FFFF
    ],
)
def test_invalid_utf8(raw: bytes) -> None:
    with pytest.raises(InvalidUtf8Error):
        bcs.decode(bytes([len(raw)]) + raw, bcs.STR)


# --- integers out of range -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x80\x80\x80\x10",  # 2^32: does not fit u32
        b"\x80\x80\x80\x80\x80\x01",  # 2^35: six bytes
        b"\xff\xff\xff\xff\x1f",  # 2^36 - 1
    ],
)
def test_uleb128_above_u32(data: bytes) -> None:
    with pytest.raises(IntegerOutOfRangeError):
        bcs.decode(data, bcs.ULEB128)


def test_sequence_length_above_bcs_maximum() -> None:
    # 2^31 fits in u32 but exceeds MAX_SEQUENCE_LENGTH.
    with pytest.raises(IntegerOutOfRangeError):
        bcs.decode(b"\x80\x80\x80\x80\x08", bcs.BYTES)


# --- maps ----------------------------------------------------------------------------


def test_map_keys_out_of_order() -> None:
    with pytest.raises(NonCanonicalMapError):
        bcs.decode(b"\x02\x02\x00\x01\x00", bcs.Map(bcs.U8, bcs.U8))


def test_map_duplicate_keys() -> None:
    with pytest.raises(NonCanonicalMapError):
        bcs.decode(b"\x02\x01\x00\x01\x00", bcs.Map(bcs.U8, bcs.U8))


# --- invariants of decoded values ----------------------------------------------------


def test_value_breaking_a_type_invariant() -> None:
    """A user signature with an unknown scheme flag is well-formed BCS but invalid."""
    from soma.types.crypto import UserSignature

    with pytest.raises(InvalidValueError):
        bcs.decode(bytes([97, 9]) + bytes(96), UserSignature.bcs_codec())


def test_variant_class_rejects_other_variant() -> None:
    with pytest.raises(InvalidValueError):
        Square.from_bytes(Circle(3).to_bytes())


# --- encoding side -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "value"),
    [
        (bcs.U8, 256),
        (bcs.U64, -1),
        (bcs.U64, 2**64),
        (bcs.I8, 128),
        (bcs.U128, 2**128),
        (bcs.ULEB128, 2**32),
        (bcs.BOOL, 1),
        (bcs.FixedBytes(4), b"abc"),
        (bcs.STR, "\ud800"),
        (bcs.U64, "7"),
    ],
)
def test_encode_rejects_values_outside_schema(codec: bcs.Codec[Any], value: Any) -> None:
    with pytest.raises(BcsEncodeError):
        bcs.encode(value, codec)


def test_encode_rejects_out_of_range_struct_field() -> None:
    with pytest.raises(BcsEncodeError):
        Pair(2**64, True).to_bytes()


# --- fuzz: arbitrary bytes never escape as a non-SomaError ----------------------------


def _assert_not_leaked(error: BaseException) -> None:
    """`decode` converts stray IndexError/struct.error into InvalidValueError as a last
    line of defence; a codec that relies on that net has a bug this test should see."""
    assert not isinstance(error.__cause__, IndexError | struct.error | TypeError), repr(
        error.__cause__
    )


FUZZ_TARGETS = [SignedTransaction, TransactionData, TransactionEffects, Owner, Pair, Shape]


@pytest.mark.parametrize("cls", FUZZ_TARGETS, ids=lambda c: c.__name__)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_decode_errors(cls: type[BcsStruct], data: bytes) -> None:
    try:
        value = cls.from_bytes(data)
    except BcsDecodeError as e:
        _assert_not_leaked(e)
        return
    # Whatever decodes must be the canonical encoding of what it decoded to.
    assert value.to_bytes() == data


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_encodings_are_rejected_or_canonical(data: st.DataObject) -> None:
    """Flip, drop or insert bytes in a valid transaction: the result is either rejected
    with a SomaError or decodes to a value whose encoding is exactly those bytes."""
    from tests.types.strategies import strategy_for

    tx = data.draw(strategy_for(SignedTransaction))
    raw = bytearray(tx.to_bytes())
    op = data.draw(st.sampled_from(["flip", "drop", "insert"]))
    i = data.draw(st.integers(0, len(raw) - 1))
    if op == "flip":
        raw[i] ^= data.draw(st.integers(1, 255))
    elif op == "drop":
        del raw[i]
    else:
        raw.insert(i, data.draw(st.integers(0, 255)))
    try:
        decoded = SignedTransaction.from_bytes(bytes(raw))
    except SomaError as e:
        _assert_not_leaked(e)
        return
    assert decoded.to_bytes() == bytes(raw)


# --- strict encoding of typed fields --------------------------------------------------


def test_bool_is_not_an_integer_field() -> None:
    with pytest.raises(BcsEncodeError):
        Pair(True, True).to_bytes()


def test_mutable_bytes_are_refused() -> None:
    """A bytearray inside a frozen value could change after the value was hashed."""
    with pytest.raises(BcsEncodeError):
        bcs.encode(bytearray(b"ab"), bcs.BYTES)
    with pytest.raises(BcsEncodeError):
        bcs.encode(bytearray(4), bcs.FixedBytes(4))


def test_fields_must_have_their_declared_newtype() -> None:
    from soma.types.base import ObjectID
    from soma.types.digests import ObjectDigest, TransactionDigest
    from soma.types.object import ObjectRef

    good = ObjectRef(ObjectID.from_int(1), 1, ObjectDigest.zero())
    good.to_bytes()
    with pytest.raises(BcsEncodeError):
        ObjectRef(bytes(32), 1, ObjectDigest.zero()).to_bytes()  # type: ignore[arg-type]
    with pytest.raises(BcsEncodeError):
        ObjectRef(ObjectID.from_int(1), 1, TransactionDigest.zero()).to_bytes()
