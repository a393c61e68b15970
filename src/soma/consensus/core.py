"""Core: the consensus state machine of one validator, with no I/O.

Inputs are verified blocks (`add_blocks`) and the passing of time (`tick`); outputs are
the blocks to broadcast, the commits to hand on and the references to fetch, returned
together as a `CoreOutput`. Time is always passed in, so the same Core runs on the
simulator's virtual clock and over the real network.

Each call: blocks go through the block manager into the DAG; the commit rule decides as
many leader slots as it can and the linearizer turns committed leaders into commits
(updating the leader schedule every `commits_per_schedule_update` commits); then Core
proposes a block for the threshold clock's round if it may: that round is above its last
proposal, the round below has all its leaders or the leader timeout has passed since the
round began, and the minimum round delay since the last proposal has passed. Everything
accepted, committed or proposed is flushed to the store before the call returns, so a
block is persisted before it is broadcast and a commit before it is handed on. A restarted
Core resumes from its store and never proposes at or below its last proposed round.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from soma.consensus.block_manager import BlockManager
from soma.consensus.block_verifier import BlockVerifier
from soma.consensus.committer.status import Decision, LeaderStatus
from soma.consensus.committer.universal import NOTHING_DECIDED, SlotKey, UniversalCommitter
from soma.consensus.context import Context
from soma.consensus.dag_state import DagState
from soma.consensus.decision_log import DecisionLog
from soma.consensus.errors import BlockRejectedError, CertifiedCommitError
from soma.consensus.leader_schedule import LeaderSchedule, ReputationTracker
from soma.consensus.linearizer import Linearizer
from soma.consensus.threshold_clock import ThresholdClock
from soma.consensus.transaction import TransactionQueue
from soma.types.consensus.block import Block, BlockRef, SignedBlock, Slot
from soma.types.consensus.commit import Commit, CommittedSubDag, ReputationScores
from soma.types.crypto import ProtocolKeyPair

logger = logging.getLogger(__name__)

#: Most commit votes one block carries (older ones are implied by the newer).
MAX_COMMIT_VOTES = 100


@dataclasses.dataclass
class CoreOutput:
    proposed: list[SignedBlock] = dataclasses.field(default_factory=list)
    committed: list[CommittedSubDag] = dataclasses.field(default_factory=list)
    #: Leader slots decided by this call, in order (commits and skips).
    decided: list[LeaderStatus] = dataclasses.field(default_factory=list)
    missing: list[BlockRef] = dataclasses.field(default_factory=list)
    accepted: list[SignedBlock] = dataclasses.field(default_factory=list)
    rejected: list[tuple[SignedBlock, BlockRejectedError]] = dataclasses.field(default_factory=list)
    #: Submission tokens whose transactions went into a block we proposed.
    included: list[tuple[object, BlockRef]] = dataclasses.field(default_factory=list)
    #: Blocks proposed after the leader timeout, without every leader of the round below.
    leader_timeouts: int = 0


class Core:
    def __init__(
        self,
        context: Context,
        dag: DagState,
        key: ProtocolKeyPair,
        transactions: TransactionQueue,
        now_ms: int,
        round_robin_schedule: bool = False,
    ) -> None:
        self.context = context
        self.dag = dag
        self._key = key
        self._transactions = transactions
        params = context.parameters
        committee = context.committee
        self.verifier = BlockVerifier(context)
        self.block_manager = BlockManager(dag, self.verifier)
        self.schedule = LeaderSchedule(
            committee,
            params.leaders_per_round,
            params.bad_nodes_stake_percent,
            round_robin=round_robin_schedule,
        )
        self.committer = UniversalCommitter(
            committee,
            dag,
            self.schedule,
            params.wave_length,
            params.pipeline,
            params.leaders_per_round,
        )
        self.linearizer = Linearizer(dag)
        self.reputation = ReputationTracker(committee)
        self.clock = ThresholdClock(committee)
        self._last_decided: SlotKey = NOTHING_DECIDED
        self._last_proposed = dag.last_block_of(context.own_index)
        self._last_proposed_ms = -(10**12)
        #: Never propose at or below this round: the last round peers saw us propose in
        #: (the amnesia guard), or of any block of ours that reached us.
        self._proposal_floor = 0
        self._proposals_held = False
        self._round_start_ms = now_ms
        #: Per authority, the highest round of its blocks we have linked.
        self._linked_rounds = [-1] * committee.size
        self._recover(now_ms)
        #: Recent leader decisions, for readers of consensus (the explorer's DAG view).
        self.decisions = DecisionLog()
        self.decisions.restore(dag.store.scan_commits_backward(), dag.gc_round)

    # --- recovery --------------------------------------------------------------------

    def _recover(self, now_ms: int) -> None:
        dag = self.dag
        info = dag.last_commit_info
        scores = info[1].reputation_scores if info is not None else None
        last = dag.last_commit
        if last is not None:
            # The last commit's leader was elected under the scores in force before it;
            # if new scores took effect at that very commit, use the earlier ones.
            elected_under = scores
            if info is not None and info[0] == last.index:
                elected_under = self._scores_before(info[0])
            if elected_under is not None:
                self.schedule.update(elected_under)
            leaders = self.schedule.leaders(last.leader.round)
            offset = (
                leaders.index(last.leader.author)
                if last.leader.author in leaders
                else len(leaders) - 1
            )
            self._last_decided = (last.leader.round, offset)
        if scores is not None:
            self.schedule.update(scores)
        # Commits since the last schedule update count toward the next one.
        first = 1 if info is None else info[0] + 1
        if last is not None and first <= last.index:
            for commit in dag.store.scan_commits(first, last.index):
                blocks = [b for b in dag.get_blocks(list(commit.blocks)) if b is not None]
                self.reputation.add(
                    CommittedSubDag(commit, commit.leader, tuple(blocks), commit.timestamp_ms)
                )
        for round in range(dag.gc_round, dag.highest_accepted_round + 1):
            for block in dag.blocks_at_round(round):
                self.clock.add_block(block.round, block.author)
        for block in dag.last_blocks():
            self.clock.add_block(block.round, block.author)
        own = self._last_proposed
        for ref in own.ancestors:
            self._linked_rounds[ref.author] = max(self._linked_rounds[ref.author], ref.round)
        self._round_start_ms = now_ms

    def _scores_before(self, index: int) -> ReputationScores | None:
        """The scores in force before the commit-info entry at `index` (the previous
        entry), or None if that was the first."""
        previous = self.dag.store.commit_info_before(index)
        return None if previous is None else previous[1].reputation_scores

    # --- inputs --------------------------------------------------------------------------

    def add_blocks(self, blocks: list[SignedBlock], now_ms: int) -> CoreOutput:
        """Verified blocks from peers (`BlockVerifier.verify` already passed)."""
        out = CoreOutput()
        result = self.block_manager.try_accept_blocks(blocks)
        out.accepted = result.accepted
        out.rejected = result.rejected
        for block in result.accepted:
            if self.clock.add_block(block.round, block.author):
                self._round_start_ms = now_ms
        out.missing = result.missing
        self._step(now_ms, out)
        return out

    def tick(self, now_ms: int) -> CoreOutput:
        """Time passed (a timer fired): propose if a timeout or delay has run out."""
        out = CoreOutput()
        self._step(now_ms, out)
        return out

    def _step(self, now_ms: int, out: CoreOutput) -> None:
        self._try_commit(out)
        if self._try_propose(now_ms, out):
            # Our own block may complete certificates.
            self._try_commit(out)
        self.decisions.record(out.decided, out.committed)
        if out.committed:
            gc = self.block_manager.garbage_collect()
            out.accepted += gc.accepted
            out.missing = gc.missing
        self.dag.flush()

    # --- committing ------------------------------------------------------------------------

    @property
    def last_decided(self) -> SlotKey:
        """(round, leader offset) of the last leader slot decided: later ones are not."""
        return self._last_decided

    def _try_commit(self, out: CoreOutput) -> None:
        params = self.context.parameters
        while True:
            decided = self.committer.try_decide(self._last_decided)
            if not decided:
                return
            for status in decided:
                self._last_decided = (status.round, status.leader_offset)
                out.decided.append(status)
                if status.decision is not Decision.COMMIT:
                    continue
                assert status.block is not None
                subdags = self.linearizer.commit_leaders([(status.block, status.direct)])
                out.committed += subdags
                for subdag in subdags:
                    self.reputation.add(subdag)
                index = self.dag.last_commit_index
                if index % params.commits_per_schedule_update == 0:
                    scores = self.reputation.scores()
                    self.schedule.update(scores)
                    self.dag.add_commit_info(index, scores)
                    self.reputation.reset()
                    # Slots after this one are elected under the new schedule: decide
                    # them again.
                    break

    def add_certified_commits(
        self, commits: Sequence[tuple[Commit, Sequence[SignedBlock]]], now_ms: int
    ) -> CoreOutput:
        """Commits certified by 2f+1 stake of votes, with their (verified) blocks, from
        the commit syncer: recorded as they are, in order, after our last commit. Their
        blocks enter the DAG without the ancestor checks (their ancestors may be long
        garbage-collected here); then the normal commit rule continues from there."""
        out = CoreOutput()
        params = self.context.parameters
        dag = self.dag
        # Check the whole run before changing anything, so a bad one leaves no trace.
        fresh = [(c, b) for c, b in commits if c.index > dag.last_commit_index]
        index, digest = dag.last_commit_index, dag.last_commit_digest
        for commit, blocks in fresh:
            if commit.index != index + 1:
                raise CertifiedCommitError(
                    f"certified commit {commit.index} does not follow {index}"
                )
            if commit.previous_digest != digest:
                raise CertifiedCommitError(f"certified commit {commit.index} does not chain")
            held = {b.reference() for b in blocks}
            if any(ref not in held for ref in commit.blocks):
                raise CertifiedCommitError(f"certified commit {commit.index} lacks its blocks")
            index, digest = commit.index, commit.digest()
        inserted: list[BlockRef] = []
        for commit, blocks in fresh:
            by_ref = {b.reference(): b for b in blocks}
            ordered = [by_ref[ref] for ref in commit.blocks]
            for block in ordered:
                if not dag.contains(block.reference()):
                    dag.accept_block(block)
                    inserted.append(block.reference())
                    self.clock.add_block(block.round, block.author)
            dag.add_commit(commit, ordered)
            subdag = CommittedSubDag(
                commit, commit.leader, tuple(ordered), commit.timestamp_ms, decided_directly=False
            )
            out.committed.append(subdag)
            self.reputation.add(subdag)
            leaders = self.schedule.leaders(commit.leader.round)
            offset = leaders.index(commit.leader.author) if commit.leader.author in leaders else 0
            self._last_decided = max(self._last_decided, (commit.leader.round, offset))
            if commit.index % params.commits_per_schedule_update == 0:
                scores = self.reputation.scores()
                self.schedule.update(scores)
                dag.add_commit_info(commit.index, scores)
                self.reputation.reset()
        if out.committed:
            released = self.block_manager.blocks_inserted(inserted)
            out.accepted += released.accepted
            out.rejected += released.rejected
            for block in released.accepted:
                self.clock.add_block(block.round, block.author)
        self._step(now_ms, out)
        return out

    # --- proposing ---------------------------------------------------------------------------

    @property
    def last_proposed_round(self) -> int:
        return self._last_proposed.round

    def hold_proposals(self) -> None:
        """Propose nothing until `resume_proposals` (while the amnesia guard asks peers
        which round we last proposed in)."""
        self._proposals_held = True

    def resume_proposals(self, above_round: int) -> None:
        """Propose again, but only at rounds above `above_round`."""
        self.raise_proposal_floor(above_round)
        self._proposals_held = False

    def raise_proposal_floor(self, round: int) -> None:
        """A block of ours at `round` exists (peers hold it): never propose at or below."""
        self._proposal_floor = max(self._proposal_floor, round)

    @property
    def proposals_held(self) -> bool:
        return self._proposals_held

    def _refresh_last_proposed(self) -> int:
        """Our last block: the one we proposed, or a later one of ours that reached the
        DAG from peers (after our store was lost). Returns the round we must propose
        above."""
        own = self.dag.last_block_of(self.context.own_index)
        if own.round > self._last_proposed.round:
            self._last_proposed = own
        return max(self._proposal_floor, self._last_proposed.round)

    def _leaders_ready(self, round: int) -> bool:
        if round == 0:
            return True
        for committer in self.committer.committers:
            slot = committer.elect_leader(round)
            if slot is not None and not self.dag.blocks_at_slot(slot):
                return False
        return True

    def _try_propose(self, now_ms: int, out: CoreOutput) -> bool:
        round = self.clock.round
        params = self.context.parameters
        if self._proposals_held or round <= self._refresh_last_proposed():
            return False
        if now_ms < self._last_proposed_ms + params.min_round_delay_ms:
            return False
        timed_out = now_ms >= self._round_start_ms + params.leader_timeout_ms
        if not timed_out and not self._leaders_ready(round - 1):
            return False
        if timed_out and not self._leaders_ready(round - 1):
            out.leader_timeouts += 1
        block, tokens = self._build_block(round, now_ms)
        self.dag.accept_block(block)
        ref = block.reference()
        out.included += [(token, ref) for token in tokens]
        if self.clock.add_block(block.round, block.author):
            self._round_start_ms = now_ms
        self._last_proposed = block
        self._last_proposed_ms = now_ms
        out.proposed.append(block)
        return True

    def _build_block(self, round: int, now_ms: int) -> tuple[SignedBlock, list[object]]:
        context = self.context
        own = context.own_index
        ancestors: list[SignedBlock] = [self._last_proposed]
        for author in range(context.size):
            if author == own:
                continue
            latest = self._latest_block_below(author, round)
            if latest is None or latest.round <= self._linked_rounds[author]:
                continue
            ancestors.append(latest)
        for ancestor in ancestors:
            linked = self._linked_rounds
            linked[ancestor.author] = max(linked[ancestor.author], ancestor.round)
        params = context.parameters
        taken = self._transactions.take(params.max_block_transactions, params.max_block_bytes)
        unsigned = Block(
            epoch=context.epoch,
            round=round,
            author=own,
            timestamp_ms=max([now_ms, *(a.timestamp_ms for a in ancestors)]),
            ancestors=tuple(a.reference() for a in ancestors),
            transactions=tuple(taken.transactions),
            commit_votes=tuple(self.dag.take_commit_votes(MAX_COMMIT_VOTES)),
        )
        return SignedBlock.sign(unsigned, self._key), taken.tokens

    def _latest_block_below(self, author: int, round: int) -> SignedBlock | None:
        """`author`'s highest block at a round below `round` (the first received, if it
        equivocated)."""
        latest = self.dag.last_block_of(author)
        if latest.round < round:
            return latest
        for r in range(round - 1, max(self.dag.gc_round, 0) - 1, -1):
            blocks = self.dag.blocks_at_slot(Slot(r, author))
            if blocks:
                return blocks[0]
        return None

    # --- timers ----------------------------------------------------------------------------

    def next_deadline_ms(self) -> int | None:
        """When to call `tick` next, if a proposal is waiting on time."""
        if self._proposals_held or self.clock.round <= self._refresh_last_proposed():
            return None
        params = self.context.parameters
        earliest = self._last_proposed_ms + params.min_round_delay_ms
        if not self._leaders_ready(self.clock.round - 1):
            earliest = max(earliest, self._round_start_ms + params.leader_timeout_ms)
        return earliest
