"""Digests: Blake2b-256 over a type tag and the BCS bytes of a value.

The type tag (`"TransactionData::"`, `"TransactionEffects::"`, ...) keeps two types with
identical bytes from ever hashing to the same digest. Each digest is its own class so a
transaction digest cannot be passed where an object digest is expected, and all of them
print in Base58 like Sui's.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Self

from soma.types.bcs import Codec, FixedBytes
from soma.types.encoding import b58decode, b58encode
from soma.types.error import FormatError, InvalidValueError

DIGEST_LENGTH = 32


def blake2b256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=DIGEST_LENGTH).digest()


def tagged_hash(type_tag: str, bcs_bytes: bytes) -> bytes:
    """Blake2b-256(type_tag || "::" || bcs_bytes), the hash of every hashed structure."""
    h = hashlib.blake2b(digest_size=DIGEST_LENGTH)
    h.update(type_tag.encode("ascii"))
    h.update(b"::")
    h.update(bcs_bytes)
    return h.digest()


class Digest(bytes):
    """A 32-byte digest. Subclasses bytes so it hashes, compares and slices at C speed."""

    _codec: ClassVar[Codec[Any]]
    _BCS_LENGTH_ONLY: ClassVar[bool] = True  # lets decoders skip __new__

    def __new__(cls, raw: bytes) -> Self:
        if len(raw) != DIGEST_LENGTH:
            raise InvalidValueError(f"{cls.__name__} must be {DIGEST_LENGTH} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._codec = FixedBytes(DIGEST_LENGTH, cls)

    @classmethod
    def bcs_codec(cls) -> Codec[Self]:
        return cls._codec

    @classmethod
    def from_base58(cls, text: str) -> Self:
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


Digest._codec = FixedBytes(DIGEST_LENGTH, Digest)


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
