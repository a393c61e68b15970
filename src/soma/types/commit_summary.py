"""Commit summaries: what a quorum of validators certifies about each executed commit.

After executing every transaction of a consensus commit, each validator builds the
commit's `CommitSummary`: which commit it was (epoch, global index, the consensus commit
digest, its timestamp), the previous summary's digest (so summaries form a hash chain
back to the genesis summary), a digest over the commit's ordered signed transactions, a
digest over their effects in that order, and the state root after the commit. A
summary signed by 2f+1 stake is a `CertifiedCommitSummary`; a node outside the
committee (a fullnode, a validator far behind) trusts the chain of certified summaries
and nothing else: it fetches a commit's transactions (`CommitContents`), checks them
against the summary's transactions digest before executing them, and requires its own
effects digest and state root to equal the summary's after.

The genesis summary (index 0) is not signed: every node derives it from the genesis
transaction, and two nodes agree on a chain only if their genesis summaries are equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from soma.types.bcs import BcsStruct, Bytes32, u64
from soma.types.committee import Committee
from soma.types.digests import (
    CommitDigest,
    CommitSummaryDigest,
    Digest,
    Hashed,
    TransactionEffectsDigest,
    blake2b256,
    tagged_hash,
)
from soma.types.envelope import CertifiedEnvelope, SignedEnvelope
from soma.types.intent import Intent, IntentScope
from soma.types.transaction import SignedTransaction

#: The global index of the genesis summary; the first commit's summary is index 1.
GENESIS_SUMMARY_INDEX = 0


class CommitTransactionsDigest(Digest):
    """Over a commit's ordered signed transactions (signatures included)."""


class CommitEffectsDigest(Digest):
    """Over the effects digests of a commit's transactions, in their order."""


def transactions_digest(transactions: Sequence[SignedTransaction]) -> CommitTransactionsDigest:
    """The digest of `transactions` in this order: each one's full BCS bytes are hashed
    (signatures included, so a peer cannot serve a copy with other signatures), then
    the list of hashes."""
    hashes = b"".join(blake2b256(tx.to_bytes()) for tx in transactions)
    count = len(transactions).to_bytes(8, "little")
    return CommitTransactionsDigest(tagged_hash("CommitTransactions", count + hashes))


def effects_digest(effects: Sequence[TransactionEffectsDigest]) -> CommitEffectsDigest:
    """The digest of a commit's effects digests in its transactions' order."""
    count = len(effects).to_bytes(8, "little")
    return CommitEffectsDigest(tagged_hash("CommitEffects", count + b"".join(effects)))


class EndOfEpochData(BcsStruct):
    """What the last commit of an epoch tells a node that follows the chain: the next
    epoch's committee and start time, and the epoch's final state root. Filled by the
    epoch change; no summary carries it yet."""

    next_committee: Committee
    next_epoch_start_timestamp_ms: u64
    final_state_root: Bytes32


class CommitSummary(Hashed[CommitSummaryDigest]):
    INTENT: ClassVar[Intent] = Intent.soma(IntentScope.COMMIT_SUMMARY)
    DIGEST_TAG = "CommitSummary"
    DIGEST_TYPE = CommitSummaryDigest

    epoch: u64
    #: Global: it continues across epochs (the genesis summary is 0).
    index: u64
    #: The consensus commit this summarises (zero for genesis).
    commit_digest: CommitDigest
    previous_digest: CommitSummaryDigest
    transactions_digest: CommitTransactionsDigest
    effects_digest: CommitEffectsDigest
    #: The state accumulator's root after the commit.
    state_root: Bytes32
    timestamp_ms: u64
    end_of_epoch: EndOfEpochData | None

    def signing_epoch(self) -> int:
        return self.epoch


class SignedCommitSummary(SignedEnvelope[CommitSummary]):
    """One validator's signature over its summary of a commit."""


class CertifiedCommitSummary(CertifiedEnvelope[CommitSummary]):
    """A summary signed by 2f+1 stake of its epoch's committee."""

    def verify_certificate(self, committee: Committee) -> None:
        """Raise unless a quorum of `committee` (the summary's epoch's) signed it."""
        self.verify(committee)


class CommitContents(BcsStruct):
    """A commit's transactions, in execution order: what state sync fetches for a
    certified summary and checks against its transactions digest."""

    index: u64
    transactions: tuple[SignedTransaction, ...]

    def digest(self) -> CommitTransactionsDigest:
        return transactions_digest(self.transactions)
