"""The `SomaError` hierarchy.

Every failure a caller can act on (bad bytes from a peer, a malformed transaction, a
wrong config, a storage fault) is a subclass of `SomaError`. Each class carries a stable
machine-readable `code` so that the RPC layer, the CLI and remote peers can report it
without parsing messages, and so that renaming a Python class never changes what
clients see.
"""

from __future__ import annotations

from typing import ClassVar


class SomaError(Exception):
    """Base of every error soma raises on purpose.

    `code` is stable across releases; `message` is for humans and may change.
    """

    code: ClassVar[str] = "SOMA_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, str]:
        """The JSON form used by the HTTP API and the CLI's `--json` output."""
        return {"code": self.code, "message": self.message}


# --- serialization -------------------------------------------------------------------


class BcsError(SomaError):
    """Bytes that are not the canonical BCS encoding of the expected type, or a value
    that cannot be encoded."""

    code = "BCS_ERROR"


class BcsEncodeError(BcsError):
    """A value does not fit its declared schema (wrong type, integer out of range...)."""

    code = "BCS_ENCODE"


class BcsDecodeError(BcsError):
    """Base of every decoding rejection; `offset` is where in the input it happened."""

    code = "BCS_DECODE"

    def __init__(self, message: str, offset: int = -1) -> None:
        super().__init__(message if offset < 0 else f"{message} (at byte {offset})")
        self.offset = offset


class TrailingBytesError(BcsDecodeError):
    code = "BCS_TRAILING_BYTES"


class UnexpectedEndError(BcsDecodeError):
    """A length or fixed-size value runs past the end of the buffer."""

    code = "BCS_UNEXPECTED_END"


class NonCanonicalUlebError(BcsDecodeError):
    """A ULEB128 integer with a redundant trailing zero digit."""

    code = "BCS_NON_CANONICAL_ULEB128"


class IntegerOutOfRangeError(BcsDecodeError):
    """A ULEB128 length/tag above u32, a sequence longer than the limit, or a value
    outside a declared range."""

    code = "BCS_INTEGER_OUT_OF_RANGE"


class UnknownEnumTagError(BcsDecodeError):
    code = "BCS_UNKNOWN_ENUM_TAG"


class InvalidBoolError(BcsDecodeError):
    code = "BCS_INVALID_BOOL"


class InvalidOptionTagError(BcsDecodeError):
    code = "BCS_INVALID_OPTION_TAG"


class InvalidUtf8Error(BcsDecodeError):
    code = "BCS_INVALID_UTF8"


class NonCanonicalMapError(BcsDecodeError):
    """Map keys not in strictly increasing order of their encoded bytes."""

    code = "BCS_NON_CANONICAL_MAP"


class InvalidValueError(BcsDecodeError):
    """Well-formed bytes whose value breaks an invariant of the type (an unsorted
    committee, a key of the wrong length...)."""

    code = "BCS_INVALID_VALUE"


class FormatError(SomaError):
    """A text form (hex, Base58, base64 key file) that does not parse."""

    code = "FORMAT_ERROR"


# --- crypto --------------------------------------------------------------------------


class CryptoError(SomaError):
    code = "CRYPTO_ERROR"


class InvalidKeyError(CryptoError):
    code = "INVALID_KEY"


class InvalidSignatureError(CryptoError):
    code = "INVALID_SIGNATURE"


class KeyFileError(CryptoError):
    code = "KEY_FILE"


class InvalidTlsCertificateError(CryptoError):
    """A node's TLS certificate does not parse or is not bound to its network key."""

    code = "INVALID_TLS_CERTIFICATE"


# --- committee and quorum signatures --------------------------------------------------


class CommitteeError(SomaError):
    code = "COMMITTEE_ERROR"


class UnknownAuthorityError(CommitteeError):
    code = "UNKNOWN_AUTHORITY"


class WrongEpochError(CommitteeError):
    code = "WRONG_EPOCH"


class DuplicateSignerError(CommitteeError):
    code = "DUPLICATE_SIGNER"


class InsufficientStakeError(CommitteeError):
    code = "INSUFFICIENT_STAKE"


class InvalidQuorumSignatureError(CommitteeError):
    code = "INVALID_QUORUM_SIGNATURE"


# --- transactions --------------------------------------------------------------------


class TransactionError(SomaError):
    """A transaction that is malformed or not signed by its sender."""

    code = "INVALID_TRANSACTION"


class SignerMismatchError(TransactionError):
    code = "SIGNER_MISMATCH"


# --- storage -------------------------------------------------------------------------


class StorageError(SomaError):
    """The key-value engine failed, or a table was misused."""

    code = "STORAGE_ERROR"


class StorageClosedError(StorageError):
    """An engine, database, table, batch or iterator was used after `close()`."""

    code = "STORAGE_CLOSED"


class StorageOpenError(StorageError):
    """The engine could not open its files (bad path, permissions, a lock held by
    another process, an incompatible or corrupt database)."""

    code = "STORAGE_OPEN"


class StorageEngineError(StorageError):
    """The engine reported a failure while reading or writing an open database."""

    code = "STORAGE_ENGINE"


class StorageSchemaError(StorageError):
    """Table declarations that are invalid or disagree (bad or duplicate names, a key or
    value codec that is not a storage codec, a table looked up with codecs other than
    the ones it was opened with)."""

    code = "STORAGE_SCHEMA"


class UnknownTableError(StorageSchemaError):
    """A table (column family) that this database was not opened with."""

    code = "STORAGE_UNKNOWN_TABLE"


class StorageEncodeError(StorageError):
    """A key or value that its codec cannot encode (negative or too large integer,
    bytes of the wrong length, wrong Python type)."""

    code = "STORAGE_ENCODE"


class StorageDecodeError(StorageError):
    """Stored bytes that the table's codec cannot decode (wrong length, bad UTF-8, a
    struct whose own decoder rejects them): a corrupt or mismatched database. The
    decoder's original error, if any, is chained as `__cause__`."""

    code = "STORAGE_DECODE"


class InvalidBatchError(StorageError):
    """A write batch written twice, or used with a database it does not belong to."""

    code = "STORAGE_INVALID_BATCH"


class InvalidRangeError(StorageError):
    """A range deletion whose start key sorts after its end key."""

    code = "STORAGE_INVALID_RANGE"


# --- utilities -----------------------------------------------------------------------


class QuorumTimeoutError(SomaError):
    """A quorum map-reduce ran out of time before its reducer was satisfied.

    `state` is the reducer state when time ran out, so a caller can still inspect (or
    report) the partial answers, e.g. which authorities did respond.
    """

    code = "QUORUM_TIMEOUT"

    def __init__(self, message: str, *, state: object = None) -> None:
        super().__init__(message)
        self.state = state


class QuorumFailedError(SomaError):
    """A quorum map-reduce can no longer succeed (too much stake answered badly).

    `state` is the last reducer state; `reason` says why it gave up: the reducer's own
    reason when it returned `Failed`, or that every authority answered without success.
    """

    code = "QUORUM_FAILED"

    def __init__(self, message: str, *, state: object = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.state = state
        self.reason = message if reason is None else reason
