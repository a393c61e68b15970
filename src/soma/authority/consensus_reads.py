"""The validator service's reads of its consensus: the recent DAG with its leader
decisions (`GetRecentDag`) and the consensus commits behind executed commits (the
detail of `GetCommits`).

They read the running consensus of the node's current epoch (its Core, on the same
event loop, between two of its calls). A validator with no consensus running (it
follows the chain by state sync: not in the committee, or catching up) has nothing to
answer: `ConsensusUnavailableError`, which a caller takes as "ask another validator".
"""

from __future__ import annotations

from soma.authority import service_wire as wire
from soma.authority.commit_records import ConsensusCommits
from soma.consensus.committer.status import Decision
from soma.consensus.core import Core
from soma.consensus.decision_log import DecisionSource, LeaderDecision
from soma.consensus.recent_dag import recent_dag
from soma.types.consensus.commit import Commit
from soma.types.error import SomaError


class ConsensusUnavailableError(SomaError):
    """This validator runs no consensus now (it follows the chain by state sync)."""

    code = "CONSENSUS_UNAVAILABLE"


class DagRoundsError(SomaError):
    code = "INVALID_DAG_ROUNDS"


_STATES = {
    Decision.UNDECIDED: wire.LeaderState.UNDECIDED,
    Decision.COMMIT: wire.LeaderState.COMMITTED,
    Decision.SKIP: wire.LeaderState.SKIPPED,
}
_SOURCES = {
    DecisionSource.DIRECT: wire.DecidedBy.DIRECT,
    DecisionSource.INDIRECT: wire.DecidedBy.INDIRECT,
    DecisionSource.CERTIFIED: wire.DecidedBy.CERTIFIED,
    DecisionSource.RESTORED: wire.DecidedBy.RESTORED,
}


def require_consensus(core: Core | None) -> Core:
    if core is None:
        raise ConsensusUnavailableError(
            "this validator runs no consensus now (it follows the chain by state sync); ask another"
        )
    return core


def recent_dag_answer(
    core: Core | None, rounds: int, commit_offset: int
) -> wire.GetRecentDagResponse:
    """The last `rounds` rounds of `core`'s DAG, with commit indices made global by
    `commit_offset` (the last commit of the epochs before)."""
    if not 1 <= rounds <= wire.MAX_DAG_ROUNDS:
        raise DagRoundsError(f"rounds must be 1..{wire.MAX_DAG_ROUNDS}, got {rounds}")
    snapshot = recent_dag(require_consensus(core), rounds)
    committee = snapshot.committee
    return wire.GetRecentDagResponse(
        epoch=committee.epoch,
        authorities=tuple(wire.DagAuthority(m.name, m.hostname, m.stake) for m in committee),
        highest_round=snapshot.highest_round,
        low_round=snapshot.low_round,
        blocks=tuple(
            wire.DagBlock(b.reference(), b.ancestors, len(b.transactions), b.timestamp_ms)
            for b in snapshot.blocks
        ),
        leaders=tuple(_leader(d, commit_offset) for d in snapshot.decisions),
    )


def _leader(decision: LeaderDecision, commit_offset: int) -> wire.DagLeader:
    index = decision.commit_index
    return wire.DagLeader(
        round=decision.slot.round,
        authority=decision.slot.authority,
        state=_STATES[decision.decision],
        decided_by=None if decision.source is None else _SOURCES[decision.source],
        block=decision.leader,
        commit_index=None if index is None else commit_offset + index,
    )


def consensus_commits(core: Core | None, commit_offset: int) -> ConsensusCommits:
    """The consensus commit of a global index, from `core`'s store (this epoch's
    commits, until pruned); None where not held."""

    def lookup(index: int) -> Commit | None:
        local = index - commit_offset
        if core is None or local < 1:
            return None
        return core.dag.store.commit(local)

    return lookup
