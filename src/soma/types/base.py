"""Fundamental identifiers: addresses, object IDs and authority names.

Addresses and object IDs are 32 bytes shown as 0x-prefixed hex (as in Sui); both are
bytes subclasses so they are cheap dict keys and sort by their raw bytes, which is the
order storage keys and BCS maps use.
"""

from __future__ import annotations

from typing import ClassVar, Self

from soma.types.bcs import FixedBytesType
from soma.types.digests import TransactionDigest, blake2b256, tagged_hash
from soma.types.error import FormatError

ADDRESS_LENGTH = 32
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
#: How much of a bad input an error message quotes (inputs may be megabytes long).
QUOTED_PREFIX = 24


def quote_prefix(text: str, limit: int = QUOTED_PREFIX) -> str:
    """`text` quoted for an error message, cut to its first `limit` characters."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class Bytes32Id(FixedBytesType):
    """A 32-byte identifier printed as 0x-prefixed hex."""

    LENGTH = ADDRESS_LENGTH
    #: Whether `from_hex` takes a short form (0x5) and left-pads it. Only object IDs do,
    #: for the system objects' well-known IDs; an account address with digits missing
    #: is a typing mistake, and padding it would send coins to an address nobody owns.
    SHORT_FORM: ClassVar[bool] = False

    @classmethod
    def from_hex(cls, text: str) -> Self:
        """Parse 0x-prefixed (or bare) hex: exactly 64 digits, or fewer (left-padded)
        where the type takes a short form."""
        digits = text[2:] if text.startswith(("0x", "0X")) else text
        full = 2 * ADDRESS_LENGTH
        if not digits or len(digits) > full or not _HEX_DIGITS.issuperset(digits):
            digits_wanted = "up to 64" if cls.SHORT_FORM else "64"
            raise FormatError(
                f"{quote_prefix(text)} is not a {cls.__name__} ({digits_wanted} hex digits)"
            )
        if len(digits) < full and not cls.SHORT_FORM:
            raise FormatError(
                f"{quote_prefix(text)} is not a {cls.__name__}: it has {len(digits)} hex "
                f"digits, and a {cls.__name__} has exactly {full} (32 bytes)"
            )
        return cls(bytes.fromhex(digits.rjust(full, "0")))

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
    """The identity of an object across all its versions. Takes the short hex form
    (0x5, the system state object), as Sui's object IDs do."""

    SHORT_FORM = True

    @classmethod
    def derive(cls, tx_digest: TransactionDigest, creation_index: int) -> Self:
        """The ID of the `creation_index`-th object created by a transaction: unique and
        the same on every validator, with no counter to keep in sync."""
        return cls(tagged_hash("ObjectID", tx_digest + creation_index.to_bytes(8, "little")))


class AuthorityName(Bytes32Id):
    """A validator's identity: its authority (protocol) Ed25519 public key."""
