"""Fundamental identifiers: addresses, object IDs, authority names and integer aliases.

Addresses and object IDs are 32 bytes shown as 0x-prefixed hex (as in Sui); both are
bytes subclasses so they are cheap dict keys and sort by their raw bytes, which is the
order storage keys and BCS maps use.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from soma.types.bcs import Codec, FixedBytes, u32, u64
from soma.types.digests import TransactionDigest, blake2b256
from soma.types.encoding import hex_decode
from soma.types.error import FormatError, InvalidValueError

#: Epoch numbers, object versions, stake amounts and indices are plain ints on the wire.
EpochId = u64
Version = u64
StakeUnit = u64
AuthorityIndex = u32
TimestampMs = u64

ADDRESS_LENGTH = 32


class _Bytes32Id(bytes):
    """A 32-byte identifier printed as 0x-prefixed hex."""

    _codec: ClassVar[Codec[Any]]
    _BCS_LENGTH_ONLY: ClassVar[bool] = True  # lets decoders skip __new__

    def __new__(cls, raw: bytes) -> Self:
        if len(raw) != ADDRESS_LENGTH:
            raise InvalidValueError(
                f"{cls.__name__} must be {ADDRESS_LENGTH} bytes, got {len(raw)}"
            )
        return super().__new__(cls, raw)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._codec = FixedBytes(ADDRESS_LENGTH, cls)

    @classmethod
    def bcs_codec(cls) -> Codec[Self]:
        return cls._codec

    @classmethod
    def from_hex(cls, text: str) -> Self:
        """Parse 0x-prefixed (or bare) hex; short forms like 0x5 are left-padded."""
        raw_text = text[2:] if text.startswith(("0x", "0X")) else text
        if not raw_text or len(raw_text) > 2 * ADDRESS_LENGTH:
            raise FormatError(f"{text!r} is not a {cls.__name__}")
        try:
            return cls(hex_decode(raw_text.rjust(2 * ADDRESS_LENGTH, "0")))
        except FormatError:
            raise FormatError(f"{text!r} is not a {cls.__name__}: not hex") from None

    @classmethod
    def from_int(cls, value: int) -> Self:
        return cls(value.to_bytes(ADDRESS_LENGTH, "big"))

    @classmethod
    def zero(cls) -> Self:
        return cls(bytes(ADDRESS_LENGTH))

    def to_hex(self) -> str:
        return "0x" + self.hex()

    def __str__(self) -> str:
        return self.to_hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_hex()})"


class SomaAddress(_Bytes32Id):
    """An account address: Blake2b-256(signature scheme flag || public key)."""

    @classmethod
    def from_public_key(cls, scheme_flag: int, public_key: bytes) -> Self:
        return cls(blake2b256(bytes([scheme_flag]) + public_key))


class ObjectID(_Bytes32Id):
    """The identity of an object across all its versions."""

    @classmethod
    def derive(cls, tx_digest: TransactionDigest, creation_index: int) -> Self:
        """The ID of the `creation_index`-th object created by a transaction: unique and
        the same on every validator, with no counter to keep in sync."""
        return cls(blake2b256(b"ObjectID::" + tx_digest + creation_index.to_bytes(8, "little")))


class AuthorityName(_Bytes32Id):
    """A validator's identity: its authority (protocol) Ed25519 public key."""
