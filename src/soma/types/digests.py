"""Digests: Blake2b-256 over a type tag and the BCS bytes of a value.

The type tag (`"TransactionData::"`, `"TransactionEffects::"`, ...) keeps two types with
identical bytes from ever hashing to the same digest. Each digest is its own class so a
transaction digest cannot be passed where an object digest is expected, and all of them
print in Base58 like Sui's.
"""

from __future__ import annotations

import hashlib
import typing
from typing import ClassVar, Generic, Self, TypeVar

from soma.types.bcs import CachedBytes, FixedBytesType
from soma.types.encoding import b58decode, b58encode
from soma.types.error import FormatError

DIGEST_LENGTH = 32
#: The longest Base58 text of 32 bytes; longer input is refused before decoding, since
#: Base58 decoding is quadratic in the input length.
MAX_BASE58_DIGEST_LENGTH = 44


def blake2b256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_LENGTH).digest()


def tagged_hash(type_tag: str, bcs_bytes: bytes) -> bytes:
    """Blake2b-256(type_tag || "::" || bcs_bytes), the hash of every hashed structure."""
    h = hashlib.blake2b(digest_size=DIGEST_LENGTH)
    h.update(type_tag.encode("ascii"))
    h.update(b"::")
    h.update(bcs_bytes)
    return h.digest()


class Digest(FixedBytesType):
    """A 32-byte digest."""

    LENGTH = DIGEST_LENGTH

    @classmethod
    def from_base58(cls, text: str) -> Self:
        if len(text) > MAX_BASE58_DIGEST_LENGTH:
            raise FormatError(f"{text[:50]!r}... is too long for a Base58 digest")
        raw = b58decode(text)
        if len(raw) != DIGEST_LENGTH:
            raise FormatError(f"{text!r} is not a {DIGEST_LENGTH}-byte Base58 digest")
        return cls(raw)

    @classmethod
    def zero(cls) -> Self:
        return cls(bytes(DIGEST_LENGTH))

    def base58(self) -> str:
        return b58encode(self)

    def __str__(self) -> str:
        return b58encode(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({b58encode(self)})"


class TransactionDigest(Digest):
    """Blake2b-256 over "TransactionData::" and the BCS of a `TransactionData`."""


class TransactionEffectsDigest(Digest):
    """Blake2b-256 over "TransactionEffects::" and the BCS of `TransactionEffects`."""


class ObjectDigest(Digest):
    """Blake2b-256 over "Object::" and the BCS of an `Object`."""


class BlockDigest(Digest):
    """Blake2b-256 over "SignedBlock::" and the BCS of a signed consensus block."""


class CommitDigest(Digest):
    """Blake2b-256 over "Commit::" and the BCS of a consensus `Commit`."""


class CommitSummaryDigest(Digest):
    """Blake2b-256 over "CommitSummary::" and the BCS of a `CommitSummary`."""


D = TypeVar("D", bound=Digest)

_DIGEST_ATTR = "_digest"


class Hashed(CachedBytes, Generic[D]):
    """A value identified by the digest of its canonical bytes.

    Subclasses name their type tag and digest class; bytes and digest are computed at
    most once per instance (and the bytes not at all for a decoded value).
    """

    DIGEST_TAG: ClassVar[str]
    DIGEST_TYPE: ClassVar[type[Digest]]

    def digest(self) -> D:
        cached = self.__dict__.get(_DIGEST_ATTR)
        if cached is None:
            cached = self.DIGEST_TYPE(tagged_hash(self.DIGEST_TAG, self.to_bytes()))
            self.__dict__[_DIGEST_ATTR] = cached
        return typing.cast(D, cached)
