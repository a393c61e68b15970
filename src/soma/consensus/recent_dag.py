"""The recent DAG as a validator sees it: the blocks of its last rounds and what the
commit rule decided about their leader slots.

A read for observers (the validator service's `GetRecentDag`, behind the explorer's
DAG view), taken from the Core's in-memory DAG and decision log between two of its
calls: it changes nothing, and costs a walk over at most `MAX_ROUNDS` rounds of
blocks. Rounds below the garbage-collection round have left memory, so the snapshot
starts no lower than it. The answer is bounded twice: in rounds, and in references
(blocks plus their ancestor links), so a large committee gets fewer rounds rather than
a huge answer.

A leader slot of a round in the snapshot is reported when the decision log holds it
(committed or skipped), or as undecided when it comes after the last slot the commit
rule decided. Slots decided before a restart or skipped among certified commits are
not known here, and not reported.
"""

from __future__ import annotations

import dataclasses

from soma.consensus.committer.status import Decision
from soma.consensus.core import Core
from soma.consensus.decision_log import LeaderDecision
from soma.types.committee import Committee
from soma.types.consensus.block import SignedBlock

#: Most rounds one snapshot covers.
MAX_ROUNDS = 50
#: Most references (blocks and ancestor links) in one snapshot; lower rounds are left
#: out beyond it (about 44 bytes each on the wire).
MAX_REFERENCES = 50_000


@dataclasses.dataclass(frozen=True, slots=True)
class RecentDag:
    committee: Committee
    #: The highest round accepted into the DAG.
    highest_round: int
    #: The lowest round the snapshot covers (blocks below it are left out).
    low_round: int
    #: The blocks of rounds `low_round`..`highest_round`, by (round, author, digest).
    blocks: list[SignedBlock]
    #: Leader slots of those rounds, decided or not, by (round, authority).
    decisions: list[LeaderDecision]


def recent_dag(core: Core, rounds: int) -> RecentDag:
    """The last `rounds` rounds (1..`MAX_ROUNDS`) of `core`'s DAG and their leaders."""
    if not 1 <= rounds <= MAX_ROUNDS:
        raise ValueError(f"rounds must be 1..{MAX_ROUNDS}, got {rounds}")
    dag = core.dag
    high = dag.highest_accepted_round
    floor = max(1, dag.gc_round, high - rounds + 1)
    blocks: list[SignedBlock] = []
    references = 0
    low = high + 1
    for round in range(high, floor - 1, -1):
        found = dag.blocks_at_round(round)
        cost = sum(1 + len(b.ancestors) for b in found)
        if blocks and references + cost > MAX_REFERENCES:
            break
        blocks += found
        references += cost
        low = round
    blocks.sort(key=lambda b: b.reference().sort_key())
    decisions = {d.slot: d for d in core.decisions.between(low, high)}
    last_decided = core.last_decided
    for round in range(low, high + 1):
        for committer in core.committer.committers:
            slot = committer.elect_leader(round)
            if slot is None or slot in decisions:
                continue
            if (round, committer.leader_offset) > last_decided:
                decisions[slot] = LeaderDecision(slot, Decision.UNDECIDED)
    ordered = sorted(decisions.values(), key=lambda d: (d.slot.round, d.slot.authority))
    return RecentDag(core.context.committee, high, min(low, high), blocks, ordered)
