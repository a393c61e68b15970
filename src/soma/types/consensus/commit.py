"""Consensus commits.

A commit is one committed leader and the sub-DAG it brings in, in linearized order. The
sequence of commits is a hash chain (each names its predecessor's digest), identical on
every honest validator; that is what agreement means here.
"""

from __future__ import annotations

import dataclasses

from soma.types.bcs import BcsStruct, u32, u64
from soma.types.consensus.block import BlockRef, SignedBlock
from soma.types.consensus.commit_ref import CommitRef
from soma.types.digests import CommitDigest, Hashed

#: The index before the first commit: commit 1 names this digest as its predecessor.
GENESIS_COMMIT_INDEX = 0


class Commit(Hashed[CommitDigest]):
    DIGEST_TAG = "Commit"
    DIGEST_TYPE = CommitDigest

    index: u64
    previous_digest: CommitDigest
    timestamp_ms: u64
    leader: BlockRef
    blocks: tuple[BlockRef, ...]

    def reference(self) -> CommitRef:
        return CommitRef(self.index, self.digest())


class ReputationScores(BcsStruct):
    """Per-authority scores over a range of commits, as the leader schedule last
    computed them; persisted so a restarted node elects the same leaders."""

    first_commit: u64
    last_commit: u64
    scores: tuple[u64, ...]


class CommitInfo(BcsStruct):
    """Stored alongside commits at leader-schedule updates: the rounds each authority had
    committed and the reputation scores in force from then on."""

    committed_rounds: tuple[u32, ...]
    reputation_scores: ReputationScores


@dataclasses.dataclass(frozen=True)
class CommittedSubDag:
    """What consensus hands to execution: a commit and its blocks, in order."""

    commit: Commit
    leader: BlockRef
    blocks: tuple[SignedBlock, ...]
    timestamp_ms: int
    decided_directly: bool = True

    @property
    def index(self) -> int:
        return self.commit.index

    def reference(self) -> CommitRef:
        return self.commit.reference()
