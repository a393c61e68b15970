"""Digests and identifiers: hashing, Base58 and hex text forms, length checks."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma.types.base import AuthorityName, ObjectID, SomaAddress
from soma.types.digests import (
    BlockDigest,
    CommitDigest,
    Digest,
    ObjectDigest,
    TransactionDigest,
    TransactionEffectsDigest,
    blake2b256,
    tagged_hash,
)
from soma.types.encoding import b58decode, b58encode, b64decode, b64encode, hex_decode
from soma.types.error import FormatError, InvalidValueError

DIGEST_TYPES: list[type[Digest]] = [
    Digest,
    TransactionDigest,
    TransactionEffectsDigest,
    ObjectDigest,
    BlockDigest,
    CommitDigest,
]
ID_TYPES: list[type[bytes]] = [SomaAddress, ObjectID, AuthorityName]
RAW32 = st.binary(min_size=32, max_size=32)
#: 32 bytes with a run of leading zero bytes (Base58 writes them as '1's).
LEADING_ZEROS = st.tuples(st.integers(0, 32), RAW32).map(lambda t: bytes(t[0]) + t[1][t[0] :])


# --- hashing ------------------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_blake2b256(data: bytes) -> None:
    assert blake2b256(data) == hashlib.blake2b(data, digest_size=32).digest()


def test_blake2b256_known_answer() -> None:
    # Blake2b-256 of the empty string.
    assert blake2b256(b"").hex() == (
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )


@given(st.sampled_from(["TransactionData", "Object", "TransactionEffects"]), st.binary())
def test_tagged_hash_is_tag_colons_bytes(tag: str, data: bytes) -> None:
    expected = hashlib.blake2b(tag.encode() + b"::" + data, digest_size=32).digest()
    assert tagged_hash(tag, data) == expected


def test_tags_separate_identical_bytes() -> None:
    assert tagged_hash("Object", b"x") != tagged_hash("TransactionData", b"x")


# --- digests ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", DIGEST_TYPES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_wrong_length_digest_is_rejected(cls: type[Digest], length: int) -> None:
    with pytest.raises(InvalidValueError):
        cls(bytes(length))


@pytest.mark.parametrize("cls", DIGEST_TYPES, ids=lambda c: c.__name__)
@given(raw=LEADING_ZEROS)
def test_digest_prints_as_base58_and_parses_back(cls: type[Digest], raw: bytes) -> None:
    d = cls(raw)
    text = str(d)
    assert text == d.base58() == b58encode(raw)
    assert repr(d) == f"{cls.__name__}({text})"
    back = cls.from_base58(text)
    assert back == d
    assert type(back) is cls
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    assert text.startswith("1" * zeros)
    assert not text[zeros:].startswith("1")


def test_zero_digest() -> None:
    z = TransactionDigest.zero()
    assert z == bytes(32)
    assert str(z) == "1" * 32
    assert TransactionDigest.from_base58("1" * 32) == z


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1" * 31,  # 31 zero bytes
        "1" * 33,  # 33 zero bytes
        b58encode(b"\x01" * 33),
        b58encode(b"\x01" * 31),
    ],
)
def test_from_base58_of_wrong_length_is_a_format_error(text: str) -> None:
    with pytest.raises(FormatError):
        ObjectDigest.from_base58(text)


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "+", "/", "=", " ", "é"])
def test_invalid_base58_characters_are_rejected(bad: str) -> None:
    good = str(ObjectDigest(bytes(range(32))))
    with pytest.raises(FormatError):
        ObjectDigest.from_base58(good[:5] + bad + good[6:])
    with pytest.raises(FormatError):
        b58decode(bad)


def test_digest_types_are_distinct() -> None:
    raw = bytes(range(32))
    assert type(TransactionDigest(raw)) is not type(ObjectDigest(raw))
    assert isinstance(TransactionDigest(raw), Digest)
    # They are still bytes: usable as dict keys and compared by value.
    assert {TransactionDigest(raw): 1}[TransactionDigest(raw)] == 1


# --- Base58 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", ""),
        (b"\x00", "1"),
        (b"\x00\x00", "11"),
        (b"hello world", "StV1DL6CwTryKyV"),
        (bytes.fromhex("00000000287fb4cd"), "1111233QC4"),
        (b"\x00" * 32, "1" * 32),
    ],
)
def test_base58_known_vectors(raw: bytes, text: str) -> None:
    assert b58encode(raw) == text
    assert b58decode(text) == raw


@given(st.tuples(st.integers(0, 10), st.binary(max_size=64)).map(lambda t: bytes(t[0]) + t[1]))
def test_base58_round_trip_keeps_leading_zeros(raw: bytes) -> None:
    assert b58decode(b58encode(raw)) == raw


# --- hex identifiers ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", ID_TYPES, ids=lambda c: c.__name__)
@given(raw=LEADING_ZEROS)
def test_hex_round_trip(cls: type[SomaAddress], raw: bytes) -> None:
    value = cls(raw)
    text = value.to_hex()
    assert text == "0x" + raw.hex()
    assert str(value) == text
    assert repr(value) == f"{cls.__name__}({text})"
    assert cls.from_hex(text) == value
    assert cls.from_hex(text[2:]) == value
    assert cls.from_hex(text.upper().replace("0X", "0x")) == value
    assert cls.from_hex("0X" + text[2:]) == value
    # The short form (leading zeros dropped): the same value where the type takes it
    # (object IDs), refused otherwise (addresses and authority names).
    short = text[2:].lstrip("0")
    if short and len(short) < 64:
        if cls is ObjectID:
            assert cls.from_hex("0x" + short) == value
            assert cls.from_hex(short) == value
        else:
            with pytest.raises(FormatError, match="exactly 64"):
                cls.from_hex("0x" + short)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0x5", 5), ("5", 5), ("0x05", 5), ("0xff", 255), ("0x100", 256), ("0x0", 0), ("0", 0)],
)
def test_short_hex_is_left_padded_for_object_ids_only(text: str, value: int) -> None:
    assert ObjectID.from_hex(text) == ObjectID.from_int(value)
    with pytest.raises(FormatError, match=r"has \d+ hex digits.*exactly 64"):
        SomaAddress.from_hex(text)


def test_address_error_quotes_a_short_prefix_only() -> None:
    with pytest.raises(FormatError) as e:
        SomaAddress.from_hex("0x" + "z" * 10_000)
    assert len(str(e.value)) < 200
    with pytest.raises(FormatError) as e:
        SomaAddress.from_hex("0x1234")
    assert "'0x1234'" in str(e.value) and "4 hex digits" in str(e.value)


def test_from_int_and_zero() -> None:
    assert ObjectID.from_int(5) == bytes(31) + b"\x05"
    assert SomaAddress.zero() == bytes(32)
    assert SomaAddress.from_int(0) == SomaAddress.zero()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        "0X",
        "0xg",
        "xyz",
        "0x-1",
        "0x+1",
        "0x1_2",
        "0x12 34",
        "0x12 34 56",  # whitespace that bytes.fromhex would skip
        " 0x1",
        "0x1\n",
        "0x\u0661\u0662",  # ARABIC-INDIC digits: non-ASCII
        "0x0x1",
    ],
)
def test_non_hex_is_a_format_error(text: str) -> None:
    for cls in ID_TYPES:
        with pytest.raises(FormatError):
            cls.from_hex(text)  # type: ignore[attr-defined]


@pytest.mark.parametrize("digits", [65, 66, 100])
def test_too_long_hex_is_a_format_error(digits: int) -> None:
    for cls in ID_TYPES:
        with pytest.raises(FormatError):
            cls.from_hex("0x" + "1" * digits)  # type: ignore[attr-defined]
        with pytest.raises(FormatError):
            cls.from_hex("0" * digits)  # type: ignore[attr-defined]


def test_full_length_hex_with_leading_zero_bytes() -> None:
    text = "0x" + "00" * 31 + "07"
    assert SomaAddress.from_hex(text) == SomaAddress.from_int(7)
    assert SomaAddress.from_hex("0x" + "0" * 64) == SomaAddress.zero()


@pytest.mark.parametrize("cls", ID_TYPES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("length", [0, 20, 31, 33])
def test_wrong_length_id_is_rejected(cls: type[bytes], length: int) -> None:
    with pytest.raises(InvalidValueError):
        cls(bytes(length))


# --- other text forms ---------------------------------------------------------------------


def test_hex_decode() -> None:
    assert hex_decode("0xab") == b"\xab"
    assert hex_decode("AB") == b"\xab"
    with pytest.raises(FormatError):
        hex_decode("0xabc")
    with pytest.raises(FormatError):
        hex_decode("zz")


def test_b64() -> None:
    assert b64decode(b64encode(b"\x00\x01\xff")) == b"\x00\x01\xff"
    assert b64decode("  AAE=\n") == b"\x00\x01"
    for bad in ("A", "AA=A", "!!!!", "ключ"):
        with pytest.raises(FormatError):
            b64decode(bad)


def test_overlong_base58_is_refused_before_decoding() -> None:
    """Base58 decoding is quadratic; untrusted text longer than any digest is refused."""
    with pytest.raises(FormatError):
        TransactionDigest.from_base58("1" * 100_000)
