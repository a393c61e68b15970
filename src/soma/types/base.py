"""Fundamental identifiers: addresses, object IDs and authority names.

Addresses and object IDs are 32 bytes shown as 0x-prefixed hex (as in Sui); both are
bytes subclasses so they are cheap dict keys and sort by their raw bytes, which is the
order storage keys and BCS maps use.
"""

from __future__ import annotations

from typing import Self

from soma.types.bcs import FixedBytesType
from soma.types.digests import TransactionDigest, blake2b256, tagged_hash
from soma.types.error import FormatError

ADDRESS_LENGTH = 32
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


class Bytes32Id(FixedBytesType):
    """A 32-byte identifier printed as 0x-prefixed hex."""

    LENGTH = ADDRESS_LENGTH

    @classmethod
    def from_hex(cls, text: str) -> Self:
        """Parse 0x-prefixed (or bare) hex; short forms like 0x5 are left-padded."""
        digits = text[2:] if text.startswith(("0x", "0X")) else text
        if not digits or len(digits) > 2 * ADDRESS_LENGTH or not _HEX_DIGITS.issuperset(digits):
            raise FormatError(f"{text!r} is not a {cls.__name__} (up to 64 hex digits)")
        return cls(bytes.fromhex(digits.rjust(2 * ADDRESS_LENGTH, "0")))

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


class SomaAddress(Bytes32Id):
    """An account address: Blake2b-256(signature scheme flag || public key)."""

    @classmethod
    def from_public_key(cls, scheme_flag: int, public_key: bytes) -> Self:
        return cls(blake2b256(bytes([scheme_flag]) + public_key))


class ObjectID(Bytes32Id):
    """The identity of an object across all its versions."""

    @classmethod
    def derive(cls, tx_digest: TransactionDigest, creation_index: int) -> Self:
        """The ID of the `creation_index`-th object created by a transaction: unique and
        the same on every validator, with no counter to keep in sync."""
        return cls(tagged_hash("ObjectID", tx_digest + creation_index.to_bytes(8, "little")))


class AuthorityName(Bytes32Id):
    """A validator's identity: its authority (protocol) Ed25519 public key."""
