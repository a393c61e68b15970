"""Decide every leader slot of a DAG written in the DAG text format: what `soma dag
decide` prints, for someone working out why a commit was (or was not) made."""

from __future__ import annotations

from soma.consensus.committer.status import LeaderStatus
from soma.consensus.committer.universal import UniversalCommitter
from soma.consensus.context import Context
from soma.consensus.dag_state import DagState
from soma.consensus.dag_text import parse_dag
from soma.consensus.leader_schedule import LeaderSchedule
from soma.consensus.local_committee import build_committee
from soma.consensus.store import ConsensusStore


def decide_dag_text(
    text: str,
    wave_length: int = 3,
    pipeline: bool = True,
    leaders_per_round: int = 1,
    round_robin: bool = False,
) -> list[LeaderStatus]:
    """The status of every leader slot from the first leader round to the DAG's highest
    round, as the universal committer decides them over the whole DAG."""
    builder = parse_dag(text)
    committee, _ = build_committee(builder.committee_size, seed=0)
    dag = DagState(Context(committee, 0), ConsensusStore.open_memory())
    dag.accept_blocks(builder.all_blocks())
    schedule = LeaderSchedule(committee, leaders_per_round, round_robin=round_robin)
    committer = UniversalCommitter(
        committee, dag, schedule, wave_length, pipeline, leaders_per_round
    )
    return committer.decide_all(up_to_round=builder.highest_round)
