"""Errors of the consensus layer. Each rejection of a block has its own class and code,
so a peer's misbehaviour can be logged, counted and scored precisely."""

from __future__ import annotations

from soma.types.error import SomaError


class ConsensusError(SomaError):
    code = "CONSENSUS_ERROR"


class InvalidRequestError(ConsensusError):
    """A peer's request that decodes but asks for something no honest peer would."""

    code = "INVALID_REQUEST"


class CertifiedCommitError(ConsensusError):
    """Certified commits that do not follow ours (a gap, or a different chain)."""

    code = "CERTIFIED_COMMIT_MISMATCH"


class BlockRejectedError(ConsensusError):
    """A block that fails verification."""

    code = "BLOCK_REJECTED"


class BlockWrongEpochError(BlockRejectedError):
    code = "BLOCK_WRONG_EPOCH"


class BlockUnknownAuthorError(BlockRejectedError):
    code = "BLOCK_UNKNOWN_AUTHOR"


class BlockBadSignatureError(BlockRejectedError):
    code = "BLOCK_BAD_SIGNATURE"


class BlockGenesisRoundError(BlockRejectedError):
    """Only the genesis blocks, which nobody sends, live at round 0."""

    code = "BLOCK_ROUND_ZERO"


class BlockAncestorRoundError(BlockRejectedError):
    """An ancestor at or above the block's own round."""

    code = "BLOCK_ANCESTOR_ROUND"


class BlockDuplicateAncestorAuthorError(BlockRejectedError):
    code = "BLOCK_DUPLICATE_ANCESTOR_AUTHOR"


class BlockUnknownAncestorAuthorError(BlockRejectedError):
    code = "BLOCK_UNKNOWN_ANCESTOR_AUTHOR"


class BlockOwnAncestorError(BlockRejectedError):
    """The author's own previous block is not the first ancestor."""

    code = "BLOCK_OWN_ANCESTOR_NOT_FIRST"


class BlockInsufficientParentsError(BlockRejectedError):
    """Ancestors from the previous round hold less than a quorum of stake."""

    code = "BLOCK_INSUFFICIENT_PARENTS"


class BlockTimestampError(BlockRejectedError):
    """A timestamp below an ancestor's, or too far ahead of the receiver's clock."""

    code = "BLOCK_TIMESTAMP"


class BlockTooLargeError(BlockRejectedError):
    """Too many transactions, or too many bytes."""

    code = "BLOCK_TOO_LARGE"


class BlockCommitVotesError(BlockRejectedError):
    code = "BLOCK_COMMIT_VOTES"
