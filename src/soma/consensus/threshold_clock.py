"""The threshold clock: the round a validator may propose in.

Round r+1 begins once blocks of round r from authorities holding a quorum of stake are
known. A block from a higher round than the clock's proves that round has begun for a
quorum of someone, so the clock jumps to it; blocks of lower rounds do not move it.
"""

from __future__ import annotations

from soma.types.committee import Committee


class ThresholdClock:
    def __init__(self, committee: Committee, round: int = 0) -> None:
        self._committee = committee
        self._round = round
        self._authors: set[int] = set()
        self._stake = 0

    @property
    def round(self) -> int:
        """The round in which this validator may propose next."""
        return self._round

    def add_block(self, round: int, author: int) -> bool:
        """Account for a block at (round, author); return whether the clock advanced."""
        before = self._round
        if round < self._round:
            return False
        if round > self._round:
            self._round = round
            self._authors = set()
            self._stake = 0
        if author not in self._authors:
            self._authors.add(author)
            self._stake += self._committee.members[author].stake
        if self._stake >= self._committee.quorum_threshold:
            self._round = round + 1
            self._authors = set()
            self._stake = 0
        return self._round > before
