"""The universal committer: many base committers, one per (round offset, leader offset).

With pipelining there is a committer per round offset 0..wave_length-1, so every round
has leader slots; with L leaders per round each round offset has L committers, each
electing a different leader. Slots are decided from the highest round down, so that a
slot which the direct rule cannot settle can be decided indirectly from later ones; the
output is the longest prefix of decided slots after the last one already handled, in
(round, leader offset) order.
"""

from __future__ import annotations

from soma.consensus.committer.base import BaseCommitter, LeaderElector
from soma.consensus.committer.dag_view import DagView
from soma.consensus.committer.status import LeaderStatus
from soma.types.committee import Committee

#: (round, leader offset) of the last slot already decided; (0, 0) before any.
SlotKey = tuple[int, int]

NOTHING_DECIDED: SlotKey = (0, 0)


class UniversalCommitter:
    def __init__(
        self,
        committee: Committee,
        dag: DagView,
        elector: LeaderElector,
        wave_length: int = 3,
        pipeline: bool = True,
        leaders_per_round: int = 1,
    ) -> None:
        if leaders_per_round < 1 or leaders_per_round > committee.size:
            raise ValueError(
                f"leaders_per_round must be 1..{committee.size}, got {leaders_per_round}"
            )
        self._dag = dag
        self.wave_length = wave_length
        offsets = range(wave_length) if pipeline else range(1)
        self.committers = [
            BaseCommitter(committee, dag, elector, wave_length, round_offset, leader_offset)
            for round_offset in offsets
            for leader_offset in range(leaders_per_round)
        ]

    def decide_all(
        self, last_decided: SlotKey = NOTHING_DECIDED, up_to_round: int | None = None
    ) -> list[LeaderStatus]:
        """The status of every leader slot after `last_decided` up to `up_to_round`
        (default: two rounds below the highest accepted round, the last whose decision
        round can exist), in (round, leader offset) order."""
        top = self._dag.highest_accepted_round - 2 if up_to_round is None else up_to_round
        statuses: list[LeaderStatus] = []  # built highest slot first
        for round in range(top, last_decided[0] - 1, -1):
            for committer in reversed(self.committers):
                slot = committer.elect_leader(round)
                if slot is None or (round, committer.leader_offset) <= last_decided:
                    continue
                status = committer.try_direct_decide(slot)
                if not status.decided:
                    # Later slots, lowest first: the anchor is the first committed one.
                    status = committer.try_indirect_decide(slot, reversed(statuses))
                statuses.append(status)
        statuses.reverse()
        return statuses

    def try_decide(self, last_decided: SlotKey = NOTHING_DECIDED) -> list[LeaderStatus]:
        """The longest run of decided slots right after `last_decided`."""
        decided: list[LeaderStatus] = []
        for status in self.decide_all(last_decided):
            if not status.decided:
                break
            decided.append(status)
        return decided
