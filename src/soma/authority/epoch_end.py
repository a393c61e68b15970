"""When an epoch ends, decided from consensus data alone.

Every honest validator handles the same commits in the same order, so each decision
here is the same on all of them, on a restart (the epoch store keeps what was counted)
and, through the certified summaries, on every node that syncs:

1. the epoch *closes* at the first commit whose timestamp reaches the epoch's start plus
   `epoch_duration_ms`. From then on a validator refuses new user transactions
   (`EpochEndingError`) and, once what it had offered to consensus is sequenced, puts
   an `EndOfPublish` in its next block;
2. end-of-publish messages are counted once per author (the block's author: a validator
   cannot speak for another), by stake. The commit in which they reach 2f+1 stake is
   the epoch's *last commit*: its transactions are the last of the epoch, and the epoch
   change (`ChangeEpoch`) is ordered right after them;
3. consensus runs on after the last commit only until the epoch's summaries are
   certified: later commits carry summary signatures and nothing else.

Sans-IO: commits' timestamps and end-of-publish authors in, verdicts out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from soma.types.committee import Committee


@dataclasses.dataclass(frozen=True, slots=True)
class CommitVerdict:
    """What one commit did to the epoch's end."""

    #: This commit closed the epoch.
    closing: bool
    #: This commit is the epoch's last.
    last: bool
    #: Authorities whose end-of-publish this commit counted (first of each only).
    end_of_publish: tuple[int, ...]


class EpochEnd:
    def __init__(
        self,
        committee: Committee,
        end_time_ms: int,
        closing_commit: int | None = None,
        last_commit: int | None = None,
        end_of_publish: Mapping[int, int] | None = None,
    ) -> None:
        """`end_time_ms`: the epoch's start plus its duration. The other arguments are
        what the epoch store recorded (a restart resumes the count)."""
        self.committee = committee
        self.end_time_ms = end_time_ms
        self.closing_commit = closing_commit
        self.last_commit = last_commit
        self.published: dict[int, int] = dict(end_of_publish or {})

    @property
    def closing(self) -> bool:
        return self.closing_commit is not None

    @property
    def ended(self) -> bool:
        """The last commit is fixed."""
        return self.last_commit is not None

    def published_stake(self) -> int:
        return sum(self.committee.stake_of(a) for a in self.published)

    def observe(self, index: int, timestamp_ms: int, authors: Iterable[int]) -> CommitVerdict:
        """Commit `index` (the next one, not after the last) with its timestamp and the
        authors of the end-of-publish messages its blocks carry, in order."""
        if self.last_commit is not None:
            raise ValueError(f"commit {index} after the epoch's last commit {self.last_commit}")
        closing = self.closing_commit is None and timestamp_ms >= self.end_time_ms
        if closing:
            self.closing_commit = index
        counted: list[int] = []
        for author in authors:
            if 0 <= author < self.committee.size and author not in self.published:
                self.published[author] = index
                counted.append(author)
        last = self.published_stake() >= self.committee.quorum_threshold
        if last:
            self.last_commit = index
        return CommitVerdict(closing, last, tuple(counted))
