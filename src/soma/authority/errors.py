"""Why a validator refuses a transaction on submit. Each has a stable code and a message
naming the object or field at fault, so a client (the SDK, the CLI, the HTTP API) can
act on it without parsing text."""

from __future__ import annotations

from soma.types.error import SomaError


class TransactionRejectedError(SomaError):
    """A submitted transaction this validator will not offer to consensus."""

    code = "TRANSACTION_REJECTED"


class ObjectNotFoundError(TransactionRejectedError):
    """An input object does not exist (or not at the version given)."""

    code = "OBJECT_NOT_FOUND"


class ObjectVersionUnavailableError(TransactionRejectedError):
    """An owned input is named at a version that is no longer (or not yet) its live
    version: already consumed, or a future version."""

    code = "OBJECT_VERSION_UNAVAILABLE"


class ObjectDigestMismatchError(TransactionRejectedError):
    code = "OBJECT_DIGEST_MISMATCH"


class InvalidOwnerError(TransactionRejectedError):
    """An owned input does not belong to the sender, or a shared/immutable object is
    named where an owned one is needed."""

    code = "INVALID_OWNER"


class InvalidObjectTypeError(TransactionRejectedError):
    """An input is the wrong kind of object (a stake receipt where a coin is needed)."""

    code = "INVALID_OBJECT_TYPE"


class InsufficientGasError(TransactionRejectedError):
    """The budget is below the fee, or the gas coin cannot pay the budget."""

    code = "INSUFFICIENT_GAS"


class InsufficientBalanceError(TransactionRejectedError):
    code = "INSUFFICIENT_BALANCE"


class TransactionExpiredError(TransactionRejectedError):
    """The transaction's expiration epoch has passed."""

    code = "TRANSACTION_EXPIRED"


class EpochEndedError(TransactionRejectedError):
    """The validator's epoch is over (or the validator is stopping): submit again in
    the next one. Retryable: the transaction is still valid."""

    code = "EPOCH_ENDED"


class EpochEndingError(EpochEndedError):
    """The epoch is closing: this validator takes no new user transactions until the
    epoch change. Retryable: submit the same transaction again in the next epoch."""

    code = "EPOCH_ENDING"


class TransactionTooLargeError(TransactionRejectedError):
    """The transaction's bytes exceed what consensus carries in one block entry."""

    code = "TRANSACTION_TOO_LARGE"


class InvalidGasUseError(TransactionRejectedError):
    """The gas coin is used in a way that would leave nothing to pay the fee with (merged
    away into another coin, or staked whole)."""

    code = "INVALID_GAS_USE"


class ConsensusOverloadedError(TransactionRejectedError):
    """Too many transactions are waiting for consensus: retry later."""

    code = "CONSENSUS_OVERLOADED"


class AuthorityStoppedError(SomaError):
    """The authority is shutting down; nothing more is accepted."""

    code = "AUTHORITY_STOPPED"


class TransactionNotFoundError(SomaError):
    code = "TRANSACTION_NOT_FOUND"
