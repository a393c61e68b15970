"""DecisionLog: what the commit rule recently decided about each leader slot.

The Core decides leader slots and forgets them: only the commits (their leaders) reach
the store, and a skipped slot leaves no trace at all. Someone watching consensus (the
explorer's DAG view, an operator debugging a stall) wants the decisions themselves:
which slots were committed and which skipped, and whether by the direct rule (the
slot's own wave) or the indirect rule (a later committed leader). This module keeps a
bounded record of the most recent ones, fed by the Core from every call's output, so
reading it costs consensus nothing.

Commits installed from certified commit ranges (the commit syncer) were decided by
the other validators: their leaders are recorded as committed with source
`CERTIFIED`, and the slots skipped among them are not known here. After a restart the
commits in the store near the top of the DAG are recorded again with source
`RESTORED` (how they were decided is not stored); skipped slots before the restart are
not known either.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Iterable, Sequence

from soma.consensus.committer.status import Decision, LeaderStatus
from soma.types.consensus.block import BlockRef, Slot
from soma.types.consensus.commit import Commit, CommittedSubDag

#: Leader slots remembered (with one leader a round: that many rounds).
DEFAULT_CAPACITY = 1_000


class DecisionSource(enum.Enum):
    #: The slot's own wave decided it (a quorum of certificates, or of non-votes).
    DIRECT = "direct"
    #: A later committed leader (the anchor) decided it.
    INDIRECT = "indirect"
    #: Installed from a certified commit: decided by the others, not here.
    CERTIFIED = "certified"
    #: Read back from the store after a restart: how it was decided is not kept.
    RESTORED = "restored"


@dataclasses.dataclass(frozen=True, slots=True)
class LeaderDecision:
    """One leader slot and its decision. `source` says how it was decided (None while
    undecided); `leader` is the committed block and `commit_index` the epoch's consensus
    commit it led (both None unless committed)."""

    slot: Slot
    decision: Decision
    source: DecisionSource | None = None
    leader: BlockRef | None = None
    commit_index: int | None = None

    @property
    def round(self) -> int:
        return self.slot.round

    @property
    def authority(self) -> int:
        return self.slot.authority


class DecisionLog:
    """The last `capacity` decided slots, oldest dropped first."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("a decision log holds at least one slot")
        self.capacity = capacity
        self._slots: collections.OrderedDict[Slot, LeaderDecision] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, slot: Slot) -> LeaderDecision | None:
        return self._slots.get(slot)

    def record(self, decided: Sequence[LeaderStatus], committed: Sequence[CommittedSubDag]) -> None:
        """One Core call's output: the slots the commit rule decided (in order) and the
        commits made, which give each committed leader its commit index. A commit whose
        leader no decision names was installed from a certified range."""
        index_of = {subdag.leader: subdag.commit.index for subdag in committed}
        for status in decided:
            if status.decision is Decision.COMMIT:
                assert status.block is not None
                ref = status.block.reference()
                source = DecisionSource.DIRECT if status.direct else DecisionSource.INDIRECT
                self._put(
                    LeaderDecision(
                        status.slot, status.decision, source, ref, index_of.pop(ref, None)
                    )
                )
            elif status.decision is Decision.SKIP:
                source = DecisionSource.DIRECT if status.direct else DecisionSource.INDIRECT
                self._put(LeaderDecision(status.slot, status.decision, source))
        for leader, index in index_of.items():
            self._put(
                LeaderDecision(
                    leader.slot(), Decision.COMMIT, DecisionSource.CERTIFIED, leader, index
                )
            )

    def restore(self, commits_newest_first: Iterable[Commit], down_to_round: int) -> None:
        """After a restart: the stored commits whose leaders are at or above
        `down_to_round` (newest first, as the store scans them backward)."""
        found: list[Commit] = []
        for commit in commits_newest_first:
            if commit.leader.round < down_to_round or len(found) >= self.capacity:
                break
            found.append(commit)
        for commit in reversed(found):
            slot = commit.leader.slot()
            if slot not in self._slots:
                self._put(
                    LeaderDecision(
                        slot, Decision.COMMIT, DecisionSource.RESTORED, commit.leader, commit.index
                    )
                )

    def between(self, low_round: int, high_round: int) -> list[LeaderDecision]:
        """The decisions of slots at rounds `low_round`..`high_round`, by (round,
        authority)."""
        found = [d for s, d in self._slots.items() if low_round <= s.round <= high_round]
        return sorted(found, key=lambda d: (d.slot.round, d.slot.authority))

    def _put(self, decision: LeaderDecision) -> None:
        self._slots[decision.slot] = decision
        self._slots.move_to_end(decision.slot)
        while len(self._slots) > self.capacity:
            self._slots.popitem(last=False)
