"""Ed25519 keys and signatures (PyNaCl / libsodium).

One scheme, four roles, each its own class so a network key can never be used where an
authority key is expected:

* `AccountKeyPair`   -- users; signs transactions; its public key derives a `SomaAddress`.
* `AuthorityKeyPair` -- a validator's identity; signs effects and commit summaries.
* `ProtocolKeyPair`  -- a validator's consensus key; signs blocks.
* `NetworkKeyPair`   -- a node's network identity; authenticates peer connections.

A user signature is `flag || signature || public key` (97 bytes for Ed25519) over the
Blake2b-256 of an `IntentMessage`, so it carries the key needed to check it and the
address it proves.

Key files hold base64(flag || 32-byte seed) and are written with 0600 permissions.
"""

from __future__ import annotations

import enum
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import nacl.bindings
import nacl.exceptions

from soma.types.base import AuthorityName, SomaAddress
from soma.types.bcs import BYTES, Codec, FixedBytesType
from soma.types.encoding import b64decode, b64encode
from soma.types.error import (
    FormatError,
    InvalidKeyError,
    InvalidSignatureError,
    InvalidValueError,
    KeyFileError,
)
from soma.types.intent import Intent, intent_message_digest

PUBLIC_KEY_LENGTH = 32
SIGNATURE_LENGTH = 64
SEED_LENGTH = 32


class SignatureScheme(enum.IntEnum):
    """The one-byte flag in front of user signatures and in address derivation."""

    ED25519 = 0


class Ed25519PublicKey(FixedBytesType):
    """A 32-byte Ed25519 public key."""

    LENGTH = PUBLIC_KEY_LENGTH
    LENGTH_ERROR = InvalidKeyError

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise `InvalidSignatureError` unless `signature` is valid for `message`."""
        if len(signature) != SIGNATURE_LENGTH:
            raise InvalidSignatureError(f"signature must be 64 bytes, got {len(signature)}")
        try:
            nacl.bindings.crypto_sign_open(bytes(signature) + message, bytes(self))
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise InvalidSignatureError("Ed25519 signature does not verify") from None

    def to_address(self) -> SomaAddress:
        return SomaAddress.from_public_key(SignatureScheme.ED25519, self)

    def to_authority_name(self) -> AuthorityName:
        return AuthorityName(self)

    def __repr__(self) -> str:
        return f"Ed25519PublicKey({self.hex()})"


class Ed25519Signature(FixedBytesType):
    """A 64-byte Ed25519 signature."""

    LENGTH = SIGNATURE_LENGTH
    LENGTH_ERROR = InvalidSignatureError


class Ed25519KeyPair:
    """A private key. Subclasses name the key's role; the bytes are the same."""

    __slots__ = ("_public", "_secret", "_seed")

    ROLE: ClassVar[str] = "ed25519"

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_LENGTH:
            raise InvalidKeyError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(bytes(seed))
        self._seed = bytes(seed)
        self._secret = secret
        self._public = Ed25519PublicKey(public)

    @classmethod
    def generate(cls) -> Self:
        return cls(os.urandom(SEED_LENGTH))

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, message: bytes) -> Ed25519Signature:
        signed = nacl.bindings.crypto_sign(message, self._secret)
        return Ed25519Signature(signed[:SIGNATURE_LENGTH])

    def seed_bytes(self) -> bytes:
        """The private seed; only for writing key files."""
        return self._seed

    def to_base64(self) -> str:
        return b64encode(bytes([SignatureScheme.ED25519]) + self._seed)

    @classmethod
    def from_base64(cls, text: str) -> Self:
        try:
            raw = b64decode(text)
        except FormatError as e:
            raise KeyFileError(f"key is not valid base64: {e.message}") from None
        if len(raw) != 1 + SEED_LENGTH:
            raise KeyFileError(f"key must be 33 bytes (flag + seed), got {len(raw)}")
        if raw[0] != SignatureScheme.ED25519:
            raise KeyFileError(f"unsupported signature scheme flag {raw[0]}")
        return cls(raw[1:])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Ed25519KeyPair)
            and type(other) is type(self)
            and (other._seed == self._seed)
        )

    def __hash__(self) -> int:
        return hash((type(self), self._public))

    def __repr__(self) -> str:
        # Never print the private key.
        return f"{type(self).__name__}(public={self._public.hex()})"


class AccountKeyPair(Ed25519KeyPair):
    ROLE = "account"

    @property
    def address(self) -> SomaAddress:
        return self.public_key.to_address()


class AuthorityKeyPair(Ed25519KeyPair):
    ROLE = "authority"

    @property
    def name(self) -> AuthorityName:
        return self.public_key.to_authority_name()


class ProtocolKeyPair(Ed25519KeyPair):
    ROLE = "protocol"


class NetworkKeyPair(Ed25519KeyPair):
    ROLE = "network"


KP = TypeVar("KP", bound=Ed25519KeyPair)


def write_key_file(path: str | Path, key: Ed25519KeyPair) -> None:
    """Write a key atomically with mode 0600 (never readable by others, even briefly)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.to_base64() + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_key_file(path: str | Path, kind: type[KP]) -> KP:
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise KeyFileError(f"{path}: key file is not base64 text") from None
    try:
        return kind.from_base64(text)
    except KeyFileError as e:
        raise KeyFileError(f"{path}: {e.message}") from None


class UserSignature(bytes):
    """`flag || signature || public key`: a user's signature over an intent message.

    Encoded in BCS as a length-prefixed byte string so other schemes (with other key
    sizes) can be added without changing the enclosing formats.
    """

    LENGTH: ClassVar[int] = 1 + SIGNATURE_LENGTH + PUBLIC_KEY_LENGTH
    _codec: ClassVar[Codec[Any]]

    def __new__(cls, raw: bytes) -> Self:
        if len(raw) != cls.LENGTH:
            raise InvalidSignatureError(
                f"user signature must be {cls.LENGTH} bytes, got {len(raw)}"
            )
        if raw[0] != SignatureScheme.ED25519:
            raise InvalidSignatureError(f"unsupported signature scheme flag {raw[0]}")
        return super().__new__(cls, raw)

    @classmethod
    def bcs_codec(cls) -> Codec[Self]:
        return cls._codec

    @classmethod
    def create(cls, key: AccountKeyPair, intent: Intent, value_bcs: bytes) -> Self:
        sig = key.sign(intent_message_digest(intent, value_bcs))
        return cls(bytes([SignatureScheme.ED25519]) + sig + key.public_key)

    @property
    def scheme(self) -> SignatureScheme:
        return SignatureScheme(self[0])

    @property
    def signature(self) -> Ed25519Signature:
        return Ed25519Signature(self[1 : 1 + SIGNATURE_LENGTH])

    @property
    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey(self[1 + SIGNATURE_LENGTH :])

    def signer(self) -> SomaAddress:
        """The address this signature proves control of."""
        return self.public_key.to_address()

    def verify(self, intent: Intent, value_bcs: bytes) -> SomaAddress:
        """Check the signature over `intent || value_bcs`; return the signer's address."""
        self.public_key.verify(intent_message_digest(intent, value_bcs), self.signature)
        return self.signer()

    def __repr__(self) -> str:
        return f"UserSignature(signer={self.signer()})"


def _dec_user_signature(buf: bytes, pos: int) -> tuple[UserSignature, int]:
    raw, end = BYTES.dec(buf, pos)
    try:
        return UserSignature(raw), end
    except InvalidSignatureError as e:
        raise InvalidValueError(e.message, pos) from None


UserSignature._codec = Codec("UserSignature", BYTES.enc, _dec_user_signature, 1)
