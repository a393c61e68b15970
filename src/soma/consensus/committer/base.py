"""The base committer: Mysticeti's commit rule for one sequence of leader slots.

A wave of `wave_length` rounds has a leader round (its first), a voting round (the next)
and a decision round (its last). Over the DAG:

* a block of the voting round *votes* for the leader block it first reaches in the
  leader's slot, searching its ancestors depth-first in the order it lists them;
* a decision-round block is a *certificate* for a leader block when its ancestors carry a
  quorum of stake of votes for it;
* a quorum of stake of certificates commits the leader directly; a quorum of stake of
  voting-round blocks that link no block of the leader's author skips it directly;
* otherwise the slot is decided indirectly from the first committed leader at or after
  the slot's round plus one wave (the anchor): commit if some certificate for the leader
  is an ancestor of the anchor, skip if none is.

Quorum intersection makes these decisions agree on every honest validator, and at most
one block per slot can ever gather a quorum of certificates, so an equivocating leader
never gets two blocks committed in one slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from soma.consensus.committer.dag_view import DagView
from soma.consensus.committer.status import Decision, LeaderStatus
from soma.consensus.errors import ConsensusError
from soma.types.committee import Committee
from soma.types.consensus.block import BlockRef, SignedBlock, Slot


class LeaderElector(Protocol):
    def elect_leader(self, round: int, leader_offset: int) -> int: ...


class SafetyViolationError(ConsensusError):
    """Two blocks certified in one slot: more than f authorities are Byzantine."""

    code = "CONSENSUS_SAFETY_VIOLATION"


class BaseCommitter:
    def __init__(
        self,
        committee: Committee,
        dag: DagView,
        elector: LeaderElector,
        wave_length: int = 3,
        round_offset: int = 0,
        leader_offset: int = 0,
    ) -> None:
        if wave_length < 3:
            raise ValueError("a wave needs at least 3 rounds")
        self._committee = committee
        self._dag = dag
        self._elector = elector
        self.wave_length = wave_length
        self.round_offset = round_offset
        self.leader_offset = leader_offset

    # --- wave arithmetic -------------------------------------------------------------

    def wave_number(self, round: int) -> int:
        return max(round - self.round_offset, 0) // self.wave_length

    def leader_round(self, wave: int) -> int:
        return wave * self.wave_length + self.round_offset

    def decision_round(self, wave: int) -> int:
        return wave * self.wave_length + self.wave_length - 1 + self.round_offset

    def elect_leader(self, round: int) -> Slot | None:
        """The slot this committer decides at `round`, if `round` is one of its leader
        rounds. Round 0 holds the genesis blocks and never has a leader."""
        if round == 0 or self.leader_round(self.wave_number(round)) != round:
            return None
        return Slot(round, self._elector.elect_leader(round, self.leader_offset))

    # --- the direct rule ---------------------------------------------------------------

    def try_direct_decide(self, slot: Slot) -> LeaderStatus:
        if self._enough_blame(slot.round + 1, slot.authority):
            return LeaderStatus(slot, Decision.SKIP, direct=True, leader_offset=self.leader_offset)
        decision_round = self.decision_round(self.wave_number(slot.round))
        supported = [
            block
            for block in self._dag.blocks_at_slot(slot)
            if self._enough_support(decision_round, block)
        ]
        if len(supported) > 1:
            raise SafetyViolationError(f"more than one certified block in slot {slot}")
        if supported:
            return LeaderStatus(
                slot, Decision.COMMIT, supported[0], direct=True, leader_offset=self.leader_offset
            )
        return LeaderStatus.undecided(slot, self.leader_offset)

    def _enough_blame(self, voting_round: int, leader: int) -> bool:
        """A quorum of stake of voting-round blocks with no link to any block of the
        leader's author: no certificate for the leader can ever form."""
        stake = 0
        counted: set[int] = set()
        quorum = self._committee.quorum_threshold
        for block in self._dag.blocks_at_round(voting_round):
            if block.author in counted:
                continue
            if all(ref.author != leader for ref in block.ancestors):
                counted.add(block.author)
                stake += self._committee.members[block.author].stake
                if stake >= quorum:
                    return True
        return False

    def _enough_support(self, decision_round: int, leader: SignedBlock) -> bool:
        blocks = self._dag.blocks_at_round(decision_round)
        members = self._committee.members
        quorum = self._committee.quorum_threshold
        if sum(members[a].stake for a in {b.author for b in blocks}) < quorum:
            return False
        votes: dict[BlockRef, bool] = {}
        stake = 0
        counted: set[int] = set()
        for block in blocks:
            if block.author in counted:
                continue
            if self.is_certificate(block, leader, votes):
                counted.add(block.author)
                stake += members[block.author].stake
                if stake >= quorum:
                    return True
        return False

    # --- votes and certificates ----------------------------------------------------------

    def _find_supported_block(self, slot: Slot, start: SignedBlock) -> BlockRef | None:
        """The block of `slot` that `start` first reaches: depth-first over ancestors in
        the order each block lists them, each ancestor explored completely before the
        next is looked at. Iterative (a stack of ancestor iterators), so long weak-link
        chains cannot exhaust the Python stack; a block already explored without success
        is not explored again."""
        if start.round < slot.round:
            return None
        stack = [iter(start.ancestors)]
        explored: set[BlockRef] = set()
        while stack:
            ref = next(stack[-1], None)
            if ref is None:
                stack.pop()
                continue
            if ref.round == slot.round and ref.author == slot.authority:
                return ref
            if ref.round <= slot.round or ref in explored:
                continue
            explored.add(ref)
            ancestor = self._dag.get_block(ref)
            if ancestor is None:
                raise ConsensusError(f"block {ref} missing from the DAG")
            stack.append(iter(ancestor.ancestors))
        return None

    def is_vote(self, candidate: SignedBlock, leader: SignedBlock) -> bool:
        ref = leader.reference()
        return self._find_supported_block(ref.slot(), candidate) == ref

    def is_certificate(
        self, candidate: SignedBlock, leader: SignedBlock, votes: dict[BlockRef, bool]
    ) -> bool:
        """Whether `candidate`'s ancestors carry a quorum of stake of votes for `leader`.
        `votes` caches vote checks for this one leader across candidates."""
        stake = 0
        counted: set[int] = set()
        quorum = self._committee.quorum_threshold
        leader_round = leader.round
        for ref in candidate.ancestors:
            if ref.round <= leader_round:
                # Not a vote (votes are above the leader), and possibly an old block
                # long garbage-collected, as a node's first block after a gap links.
                continue
            is_vote = votes.get(ref)
            if is_vote is None:
                block = self._dag.get_block(ref)
                if block is None:
                    raise ConsensusError(f"block {ref} missing from the DAG")
                is_vote = votes[ref] = self.is_vote(block, leader)
            if is_vote and ref.author not in counted:
                counted.add(ref.author)
                stake += self._committee.members[ref.author].stake
                if stake >= quorum:
                    return True
        return False

    # --- the indirect rule ---------------------------------------------------------------

    def try_indirect_decide(self, slot: Slot, later: Iterable[LeaderStatus]) -> LeaderStatus:
        """Decide `slot` from the first committed leader at least one wave later; stop
        (undecided) at the first undecided one, since the anchor must be the first
        committed leader after the slot's wave."""
        for anchor in later:
            if anchor.round < slot.round + self.wave_length:
                continue
            if anchor.decision is Decision.UNDECIDED:
                break
            if anchor.decision is Decision.COMMIT:
                assert anchor.block is not None
                return self._decide_from_anchor(anchor.block, slot)
        return LeaderStatus.undecided(slot, self.leader_offset)

    def _decide_from_anchor(self, anchor: SignedBlock, slot: Slot) -> LeaderStatus:
        decision_round = self.decision_round(self.wave_number(slot.round))
        certificates = self._dag.ancestors_at_round(anchor, decision_round)
        certified = []
        for leader in self._dag.blocks_at_slot(slot):
            votes: dict[BlockRef, bool] = {}
            if any(self.is_certificate(c, leader, votes) for c in certificates):
                certified.append(leader)
        if len(certified) > 1:
            raise SafetyViolationError(f"more than one certified block in slot {slot}")
        if certified:
            return LeaderStatus(
                slot, Decision.COMMIT, certified[0], direct=False, leader_offset=self.leader_offset
            )
        return LeaderStatus(slot, Decision.SKIP, direct=False, leader_offset=self.leader_offset)

    def __str__(self) -> str:
        return f"Committer-L{self.leader_offset}-R{self.round_offset}"
