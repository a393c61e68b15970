"""`CommitRef`: a commit's index and digest, as carried in blocks' commit votes."""

from __future__ import annotations

from soma.types.bcs import BcsStruct, u64
from soma.types.digests import CommitDigest


class CommitRef(BcsStruct):
    index: u64
    digest: CommitDigest

    def __str__(self) -> str:
        return f"C{self.index}({str(self.digest)[:8]})"
