"""Committed sub-DAGs made up locally, in the exact form consensus hands over.

For driving an AuthorityState without a consensus instance: the execution benchmark,
the simulator-style tests that feed several validators the same commits, and tools that
replay transactions. The blocks are signed by a throwaway key; the consensus handler
does not check block signatures (consensus did), only the transactions inside.
"""

from __future__ import annotations

from collections.abc import Sequence

from soma.types.consensus.block import Block, SignedBlock
from soma.types.consensus.commit import Commit, CommittedSubDag
from soma.types.consensus.transaction import UserTransaction
from soma.types.crypto import ProtocolKeyPair
from soma.types.digests import CommitDigest
from soma.types.transaction import SignedTransaction


class SyntheticCommits:
    """Makes commits 1, 2, 3, ... of one epoch, each chaining to the previous one."""

    def __init__(self, epoch: int = 0, authors: int = 4, start_ms: int = 1_000) -> None:
        self.epoch = epoch
        self.authors = authors
        self._key = ProtocolKeyPair(bytes(32))
        self._index = 0
        self._previous = CommitDigest.zero()
        self._time_ms = start_ms
        self._round = 0

    def next(self, blocks: Sequence[Sequence[bytes]]) -> CommittedSubDag:
        """A commit of blocks holding these raw transactions (one list per block)."""
        self._index += 1
        self._round += 1
        self._time_ms += 100
        signed = []
        for position, transactions in enumerate(blocks or [[]]):
            block = Block(
                epoch=self.epoch,
                round=self._round,
                author=position % self.authors,
                timestamp_ms=self._time_ms,
                ancestors=(),
                transactions=tuple(transactions),
                commit_votes=(),
            )
            signed.append(SignedBlock.sign(block, self._key))
        refs = tuple(b.reference() for b in signed)
        commit = Commit(self._index, self._previous, self._time_ms, refs[-1], refs)
        self._previous = commit.digest()
        return CommittedSubDag(commit, refs[-1], tuple(signed), self._time_ms)

    def of_transactions(
        self, transactions: Sequence[SignedTransaction], per_block: int = 100
    ) -> CommittedSubDag:
        raw = [UserTransaction(tx).to_bytes() for tx in transactions]
        blocks = [raw[i : i + per_block] for i in range(0, len(raw), per_block)]
        return self.next(blocks)
