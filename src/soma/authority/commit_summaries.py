"""Building a commit's summary, certifying summaries from signatures, detecting a fork.

- `build_summary`: the node's own summary of a commit it executed, from the commit's
  transactions in execution order (the first is its ConsensusCommitPrologue, which names
  the consensus commit and its timestamp), their effects and the state root after.
- `SummaryCertifier`: validators exchange their signed summaries through consensus (a
  `CommitSummarySignature` entry in their blocks; see docs/state-sync.md for why through
  consensus). Every validator sees the same signatures in the same order, so each forms
  the same certificate at the same point: the first 2f+1 stake of valid signatures over
  one summary. Sans-IO: signatures in, certificates out.
- `Fork`: a certified summary that differs from the node's own summary of the same
  commit. Its execution diverged from 2f+1 of the committee: it must stop executing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from soma.types.commit_summary import (
    CertifiedCommitSummary,
    CommitSummary,
    EndOfEpochData,
    SignedCommitSummary,
    effects_digest,
    transactions_digest,
)
from soma.types.committee import Committee
from soma.types.digests import CommitDigest, CommitSummaryDigest
from soma.types.effects import TransactionEffects
from soma.types.error import SomaError
from soma.types.transaction import ConsensusCommitPrologue, SignedTransaction

#: Signatures for commits this far past the last certified one are not kept (a
#: Byzantine validator could otherwise make every node hold signatures for ever).
MAX_PENDING_INDICES = 10_000


class ForkDetectedError(SomaError):
    code = "FORK_DETECTED"


@dataclasses.dataclass(frozen=True)
class Fork:
    """This node's summary of commit `index` differs from the certified one."""

    index: int
    own: CommitSummaryDigest
    certified: CommitSummaryDigest

    def error(self) -> ForkDetectedError:
        return ForkDetectedError(
            f"fork at commit {self.index}: this node's summary is {self.own}, the certified "
            f"summary is {self.certified}; execution stopped"
        )


def build_summary(
    previous: CommitSummary,
    epoch: int,
    index: int,
    transactions: Sequence[SignedTransaction],
    effects: Sequence[TransactionEffects],
    state_root: bytes,
    end_of_epoch: EndOfEpochData | None = None,
) -> CommitSummary:
    """The summary of commit `index` (global), whose transactions (prologue first) and
    their effects are given in execution order, chained to `previous`; the last commit
    of an epoch carries `end_of_epoch`."""
    if index != previous.index + 1:
        raise SomaError(f"summary {index} built after summary {previous.index}")
    prologue = transactions[0].data.kind if transactions else None
    if not isinstance(prologue, ConsensusCommitPrologue):
        raise SomaError(f"commit {index} does not start with its commit prologue")
    return CommitSummary(
        epoch=epoch,
        index=index,
        commit_digest=CommitDigest(prologue.consensus_commit_digest),
        previous_digest=previous.digest(),
        transactions_digest=transactions_digest(transactions),
        effects_digest=effects_digest([e.digest() for e in effects]),
        state_root=state_root,
        timestamp_ms=prologue.commit_timestamp_ms,
        end_of_epoch=end_of_epoch,
    )


def genesis_summary(
    genesis: SignedTransaction, effects: TransactionEffects, state_root: bytes, timestamp_ms: int
) -> CommitSummary:
    """Index 0: what every node derives from the genesis transaction."""
    return CommitSummary(
        epoch=0,
        index=0,
        commit_digest=CommitDigest.zero(),
        previous_digest=CommitSummaryDigest.zero(),
        transactions_digest=transactions_digest([genesis]),
        effects_digest=effects_digest([effects.digest()]),
        state_root=state_root,
        timestamp_ms=timestamp_ms,
        end_of_epoch=None,
    )


class SummaryCertifier:
    """Certifies summaries of one epoch from its committee's signatures, in the order
    given (consensus order, the same on every validator)."""

    def __init__(self, committee: Committee, certified_through: int) -> None:
        self.committee = committee
        #: Every index up to this one is certified.
        self.certified_through = certified_through
        #: Certified indices above `certified_through` (certificates may complete out of
        #: order: signatures for commit n+1 can reach a quorum before those for n).
        self._certified: set[int] = set()
        #: index -> summary digest -> the signatures over it, in arrival order.
        self._signatures: dict[int, dict[CommitSummaryDigest, list[SignedCommitSummary]]] = {}
        #: index -> the authorities that signed something for it (one vote each).
        self._voted: dict[int, set[bytes]] = {}
        self.rejected = 0

    def add(self, signed: Iterable[SignedCommitSummary]) -> list[CertifiedCommitSummary]:
        """Take signatures in order; returns the certificates they complete, in index
        order. Invalid ones (bad signature, another epoch, not a member, a second vote
        by one authority for one index) are dropped and counted."""
        made: dict[int, CertifiedCommitSummary] = {}
        for item in signed:
            certificate = self._add_one(item)
            if certificate is not None:
                made[certificate.data.index] = certificate
        return [made[i] for i in sorted(made)]

    def is_certified(self, index: int) -> bool:
        return index <= self.certified_through or index in self._certified

    def _add_one(self, item: SignedCommitSummary) -> CertifiedCommitSummary | None:
        index = item.data.index
        if self.is_certified(index) or index > self.certified_through + MAX_PENDING_INDICES:
            return None
        if item.data.epoch != self.committee.epoch:
            self.rejected += 1
            return None
        signer = bytes(item.auth_signature.authority)
        voted = self._voted.setdefault(index, set())
        if signer in voted:
            self.rejected += 1
            return None
        try:
            item.verify(self.committee)
        except SomaError:
            self.rejected += 1
            return None
        voted.add(signer)
        group = self._signatures.setdefault(index, {}).setdefault(item.data.digest(), [])
        group.append(item)
        stake = sum(self.committee.stake_of(s.auth_signature.authority) for s in group)
        if stake < self.committee.quorum_threshold:
            return None
        self.mark_certified(index)
        return CertifiedCommitSummary.from_signed(self.committee, list(group))

    def mark_certified(self, index: int) -> None:
        """`index` is certified (here, or learned another way): stop collecting for it."""
        self._signatures.pop(index, None)
        self._voted.pop(index, None)
        if index > self.certified_through:
            self._certified.add(index)
        while self.certified_through + 1 in self._certified:
            self.certified_through += 1
            self._certified.discard(self.certified_through)

    def pending(self) -> int:
        """Indices with signatures collected and no certificate yet."""
        return len(self._signatures)
