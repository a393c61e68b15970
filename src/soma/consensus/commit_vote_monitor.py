"""The highest commit index a quorum has voted for, from the commit votes in blocks.

Every block carries references to the commits its author made since its previous block.
An authority's highest vote is how far it has committed; the highest index that 2f+1
stake has reached is how far the quorum has committed, and at least f+1 honest
authorities are among them, so f Byzantine authorities voting for commits that do not
exist cannot raise it. A node well below it is lagging and catches up on certified
commits (the commit syncer) rather than block by block.
"""

from __future__ import annotations

from collections.abc import Iterable

from soma.types.committee import Committee
from soma.types.consensus.block import SignedBlock


class CommitVoteMonitor:
    """The highest commit index voted for by 2f+1 stake (sans-IO)."""

    def __init__(self, committee: Committee) -> None:
        self._committee = committee
        self._highest = [0] * committee.size

    def observe(self, blocks: Iterable[SignedBlock]) -> None:
        highest = self._highest
        for block in blocks:
            for vote in block.block.commit_votes:
                if vote.index > highest[block.author]:
                    highest[block.author] = vote.index

    def quorum_commit_index(self) -> int:
        members = self._committee.members
        order = sorted(range(len(members)), key=lambda a: -self._highest[a])
        stake = 0
        for author in order:
            stake += members[author].stake
            if stake >= self._committee.quorum_threshold:
                return self._highest[author]
        return 0
