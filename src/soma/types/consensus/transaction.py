"""What validators put in consensus blocks: an enum, so kinds other than user
transactions (end of publish, commit signatures) can be added without changing the
bytes of the ones that exist. Tags are wire format: never renumber."""

from __future__ import annotations

from soma.types.bcs import BcsEnum
from soma.types.commit_summary import SignedCommitSummary
from soma.types.transaction import SignedTransaction


class ConsensusTransaction(BcsEnum):
    """One entry of a block's transaction list."""


class UserTransaction(ConsensusTransaction, tag=0):
    """A user's signed transaction, offered by the validator that received it."""

    transaction: SignedTransaction


class CommitSummarySignature(ConsensusTransaction, tag=1):
    """A validator's signature over its summary of an executed commit: ordered by
    consensus, so every validator forms the same certificate from the same first 2f+1
    stake of them (`soma.authority.commit_summaries.SummaryCertifier`)."""

    signed: SignedCommitSummary


class EndOfPublish(ConsensusTransaction, tag=2):
    """The block's author will offer no more user transactions in this epoch: it saw the
    epoch close and its own submissions are sequenced. At 2f+1 stake of them (counted
    once per author, in commit order) the epoch's last commit is fixed
    (`soma.authority.epoch_end`)."""
