"""The linearizer: turns each committed leader into a commit and its sub-DAG.

The sub-DAG of a leader is every block it reaches that is not yet committed and lies above
the garbage-collection round, sorted by (round, author, digest). Every honest validator
commits the same leaders in the same order and holds the same blocks above the GC round,
so every one of them builds the same sub-DAGs, in the same order, into the same hash chain
of commits.

A commit's timestamp is the stake-weighted median of the timestamps of the leader's
parents (its ancestors from the round just below), so no single authority can move it,
and it never goes below the previous commit's.
"""

from __future__ import annotations

from collections.abc import Sequence

from soma.consensus.dag_state import DagState
from soma.consensus.errors import ConsensusError
from soma.types.consensus.block import BlockRef, SignedBlock
from soma.types.consensus.commit import Commit, CommittedSubDag


class Linearizer:
    def __init__(self, dag: DagState) -> None:
        self._dag = dag

    def commit_leaders(self, leaders: Sequence[tuple[SignedBlock, bool]]) -> list[CommittedSubDag]:
        """Commit each (leader block, decided directly) in order; the commits are
        recorded in DagState (and written at its next flush) before being returned."""
        out: list[CommittedSubDag] = []
        for leader, direct in leaders:
            if self._dag.is_committed(leader.reference()):
                raise ConsensusError(f"leader {leader} is already committed")
            blocks = self._collect(leader)
            commit = Commit(
                index=self._dag.last_commit_index + 1,
                previous_digest=self._dag.last_commit_digest,
                timestamp_ms=max(
                    self._median_parent_time(leader), self._dag.last_commit_timestamp_ms
                ),
                leader=leader.reference(),
                blocks=tuple(b.reference() for b in blocks),
            )
            self._dag.add_commit(commit, blocks)
            out.append(
                CommittedSubDag(commit, commit.leader, tuple(blocks), commit.timestamp_ms, direct)
            )
        return out

    def _collect(self, leader: SignedBlock) -> list[SignedBlock]:
        dag = self._dag
        gc_round = dag.gc_round
        found: dict[BlockRef, SignedBlock] = {leader.reference(): leader}
        stack = [leader]
        while stack:
            block = stack.pop()
            for ref in block.ancestors:
                if ref.round <= gc_round or ref in found or dag.is_committed(ref):
                    continue
                ancestor = dag.get_block(ref)
                if ancestor is None:
                    raise LookupError(f"ancestor {ref} of committed leader {leader} is missing")
                found[ref] = ancestor
                stack.append(ancestor)
        return [found[ref] for ref in sorted(found)]

    def _median_parent_time(self, leader: SignedBlock) -> int:
        dag = self._dag
        members = dag.context.committee.members
        parents = []
        for ref in leader.ancestors:
            if ref.round == leader.round - 1:
                block = dag.get_block(ref)
                if block is not None:
                    parents.append((block.timestamp_ms, members[block.author].stake))
        if not parents:
            return leader.timestamp_ms
        return weighted_median(parents)


def weighted_median(values: Sequence[tuple[int, int]]) -> int:
    """The smallest value v such that the weight of values <= v is at least half the
    total weight: with stakes as weights, more than half the stake can move it only by
    agreeing."""
    ordered = sorted(values)
    total = sum(weight for _, weight in ordered)
    accumulated = 0
    for value, weight in ordered:
        accumulated += weight
        if 2 * accumulated >= total:
            return value
    return ordered[-1][0]
