"""One validator's consensus protocol as a message-in, messages-out state machine.

`ConsensusProtocol` decodes and verifies what peers send, drives the Core and the
Synchronizer, answers fetches and subscriptions, and says what to send where; the caller
(the simulator, or the gRPC layer) only moves bytes and calls `tick` when
`next_deadline_ms` comes. Nothing a peer sends can raise out of `handle`: malformed or
invalid input is counted against the sender and dropped.

Liveness across disconnections: a node pushes each new block of its own to every peer;
when a peer has sent it no new block of its own for `resubscribe_after_ms`, it asks that
peer to resend its blocks above the last one it holds (a subscription resuming), so two
halves of a healed partition, or a restarted node, pick up what they missed even if no
new block is being proposed. Only that progress counts: a peer that is heard from (its
fetch requests) but whose own blocks stopped coming, or whose blocks reach us only
relayed by others, is exactly the peer whose stream went stale.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import random
from collections.abc import Callable, Sequence

from soma.consensus.commit_vote_monitor import CommitVoteMonitor
from soma.consensus.committer.status import LeaderStatus
from soma.consensus.context import Context
from soma.consensus.core import Core, CoreOutput
from soma.consensus.dag_state import DagState
from soma.consensus.errors import BlockRejectedError
from soma.consensus.messages import (
    BlockPush,
    ConsensusMessage,
    FetchBlocksRequest,
    FetchBlocksResponse,
    SubscribeRequest,
)
from soma.consensus.store import ConsensusStore
from soma.consensus.synchronizer import Synchronizer, blocks_for_fetch
from soma.consensus.transaction import TransactionQueue
from soma.types.consensus.block import BlockRef, SignedBlock
from soma.types.consensus.commit import CommittedSubDag
from soma.types.crypto import ProtocolKeyPair
from soma.types.error import SomaError

logger = logging.getLogger(__name__)

#: Own blocks resent in answer to one subscription.
MAX_BLOCKS_PER_SUBSCRIPTION = 200


@dataclasses.dataclass
class Outgoing:
    #: (peer, message); peer None means every other validator.
    sends: list[tuple[int | None, ConsensusMessage]] = dataclasses.field(default_factory=list)
    committed: list[CommittedSubDag] = dataclasses.field(default_factory=list)
    decided: list[LeaderStatus] = dataclasses.field(default_factory=list)
    proposed: list[SignedBlock] = dataclasses.field(default_factory=list)
    #: Submission tokens whose transactions went into a block we proposed.
    included: list[tuple[object, BlockRef]] = dataclasses.field(default_factory=list)
    #: Blocks that joined the DAG (ours and peers').
    accepted: int = 0
    #: Why each block a peer sent was rejected (an error code, or what was wrong).
    rejected: list[str] = dataclasses.field(default_factory=list)
    #: Blocks proposed after the leader timeout.
    leader_timeouts: int = 0


class ConsensusProtocol:
    def __init__(
        self,
        context: Context,
        store: ConsensusStore,
        key: ProtocolKeyPair,
        transactions: TransactionQueue,
        rng: random.Random,
        now_ms: int,
        round_robin_schedule: bool = False,
        resubscribe_after_ms: int | None = 1_000,
        commit_sync_lag: int | None = None,
    ) -> None:
        """`commit_sync_lag`: when the quorum has committed more than this many commits
        beyond ours, stop fetching missing blocks (a commit syncer brings us certified
        commits instead). None, as in the simulator, which has no commit syncer: always
        fetch."""
        #: Called with the peer blocks that passed verification, before they join the
        #: DAG: the layer above prepares their transactions (decoding, signature checks)
        #: while consensus orders them, off the path from commit to execution.
        self.block_listener: Callable[[Sequence[SignedBlock]], None] | None = None
        self.context = context
        self.dag = DagState(context, store)
        self.core = Core(context, self.dag, key, transactions, now_ms, round_robin_schedule)
        self.sync = Synchronizer(context.own_index, context.size, context.parameters, rng)
        self._resubscribe_after_ms = resubscribe_after_ms
        #: When each peer last sent us a new block of its own (above the highest one it
        #: sent), and that round: its stream's progress. Blocks of it relayed by others
        #: do not count, or a healed node served only by relays would never resubscribe.
        self._last_progress = [now_ms] * context.size
        self._highest_direct = [0] * context.size
        self._last_subscribed = [now_ms] * context.size
        #: Invalid messages per peer since it was last dropped (the authority resets it)...
        self.bad_messages: collections.Counter[int] = collections.Counter()
        #: ...and in all, since this protocol started.
        self.bad_messages_total: collections.Counter[int] = collections.Counter()
        #: Per authority, the highest round of a verified block received from anyone.
        self.highest_received = [0] * context.size
        #: Commit votes of every verified block received (accepted or still suspended).
        self.commit_votes = CommitVoteMonitor(context.committee)
        self._commit_sync_lag = commit_sync_lag
        #: Set by the commit syncer when it has made no progress for a while although we
        #: lag (f Byzantine validators can vote for commits nobody can certify): block
        #: fetching then resumes, the slow way being better than none.
        self.commit_sync_stalled = False

    @property
    def own_index(self) -> int:
        return self.context.own_index

    def start(self, now_ms: int) -> Outgoing:
        """After a (re)start: resend our latest block, ask every peer for what it
        proposed since the last block of its we hold, and propose if we may."""
        out = Outgoing()
        last = self.core.dag.last_block_of(self.own_index)
        if last.round > 0:
            out.sends.append((None, BlockPush(last.to_bytes())))
        for peer in range(self.context.size):
            if peer != self.own_index:
                self._subscribe(peer, now_ms, out)
        self._apply(self.core.tick(now_ms), None, now_ms, out)
        return out

    # --- input ---------------------------------------------------------------------------

    def handle(self, sender: int, data: bytes, now_ms: int) -> Outgoing:
        out = Outgoing()
        if not 0 <= sender < self.context.size or sender == self.own_index:
            return out
        try:
            message = ConsensusMessage.from_bytes(data)
        except SomaError as e:
            self._bad(sender, f"undecodable message: {e}")
            return out
        if isinstance(message, BlockPush):
            self._on_blocks(sender, [message.block], now_ms, out, own_only=True)
        elif isinstance(message, FetchBlocksResponse):
            self._on_blocks(sender, list(message.blocks), now_ms, out, own_only=False)
            self.sync.on_response(message.request_id)
            self._fetch(now_ms, out)
        elif isinstance(message, FetchBlocksRequest):
            blocks = self.answer_fetch(message.refs, message.highest_accepted_rounds)
            response = FetchBlocksResponse(message.request_id, tuple(b.to_bytes() for b in blocks))
            out.sends.append((sender, response))
        elif isinstance(message, SubscribeRequest):
            for block in self.own_blocks_after(message.after_round, MAX_BLOCKS_PER_SUBSCRIPTION):
                out.sends.append((sender, BlockPush(block.to_bytes())))
        return out

    def receive_blocks(
        self, sender: int, raw: Sequence[bytes], now_ms: int, own_only: bool = True
    ) -> Outgoing:
        """Blocks (serialized) from `sender`: pushed (`own_only`: it may only push its
        own) or otherwise sent."""
        out = Outgoing()
        if self._is_peer(sender):
            self._on_blocks(sender, list(raw), now_ms, out, own_only)
        return out

    def receive_fetched(
        self, sender: int, request_id: int, raw: Sequence[bytes], now_ms: int
    ) -> Outgoing:
        """The answer to fetch request `request_id`."""
        out = Outgoing()
        if self._is_peer(sender):
            self._on_blocks(sender, list(raw), now_ms, out, own_only=False)
        self.sync.on_response(request_id)
        self._fetch(now_ms, out)
        return out

    def fetch_failed(self, request_id: int, now_ms: int) -> Outgoing:
        """Fetch request `request_id` failed (timeout, refused, unreachable)."""
        out = Outgoing()
        self.sync.on_response(request_id)
        self._fetch(now_ms, out)
        return out

    def _is_peer(self, sender: int) -> bool:
        return 0 <= sender < self.context.size and sender != self.own_index

    def _on_blocks(
        self, sender: int, raw: list[bytes], now_ms: int, out: Outgoing, own_only: bool
    ) -> None:
        verified: list[SignedBlock] = []
        for data in raw[: self.context.parameters.max_blocks_per_fetch]:
            try:
                block = SignedBlock.from_bytes(data)
            except SomaError as e:
                self._bad(sender, f"undecodable block: {e}")
                out.rejected.append("UNDECODABLE")
                continue
            if own_only and block.author != sender:
                self._bad(sender, f"pushed {block}, a block it did not author")
                out.rejected.append("NOT_ITS_OWN")
                continue
            if self.dag.contains(block.reference()):
                continue
            try:
                self.core.verifier.verify(block, now_ms)
            except BlockRejectedError as e:
                self._bad(sender, str(e))
                out.rejected.append(e.code)
                continue
            verified.append(block)
            if block.round > self.highest_received[block.author]:
                self.highest_received[block.author] = block.round
            if block.author == sender and block.round > self._highest_direct[sender]:
                self._highest_direct[sender] = block.round
                self._last_progress[sender] = now_ms
            if block.author == self.own_index:
                # A block of ours we do not remember (our store lost it): its round was
                # signed already, whether or not the block reaches our DAG.
                self.core.raise_proposal_floor(block.round)
        if verified:
            self.commit_votes.observe(verified)
            if self.block_listener is not None:
                self.block_listener(verified)
            self._apply(self.core.add_blocks(verified, now_ms), sender, now_ms, out)

    def answer_fetch(
        self, refs: Sequence[BlockRef], highest_accepted_rounds: Sequence[int]
    ) -> list[SignedBlock]:
        """The blocks a peer asked for, with the ancestors it lacks, capped."""
        cap = self.context.parameters.max_blocks_per_fetch
        return blocks_for_fetch(
            self.dag,
            list(refs[:cap]),
            list(highest_accepted_rounds),
            cap,
            self.context.parameters.max_fetch_response_bytes,
        )

    def own_blocks_after(self, after_round: int, limit: int) -> list[SignedBlock]:
        return self.dag.own_blocks_after(self.own_index, after_round, limit)

    def tick(self, now_ms: int) -> Outgoing:
        out = Outgoing()
        self._apply(self.core.tick(now_ms), None, now_ms, out)
        for peer in range(self.context.size):
            if peer == self.own_index or self._resubscribe_after_ms is None:
                continue
            stale = now_ms - self._last_progress[peer] >= self._resubscribe_after_ms
            if stale and now_ms - self._last_subscribed[peer] >= self._resubscribe_after_ms:
                self._subscribe(peer, now_ms, out)
        return out

    def next_deadline_ms(self, now_ms: int) -> int:
        """When `tick` should next be called (at the latest a resubscription check)."""
        candidates = [now_ms + self.context.parameters.periodic_sync_interval_ms]
        for deadline in (self.core.next_deadline_ms(), self.sync.next_deadline_ms()):
            if deadline is not None:
                candidates.append(deadline)
        return max(now_ms, min(candidates))

    # --- output ----------------------------------------------------------------------------

    def apply_core_output(self, result: CoreOutput, now_ms: int) -> Outgoing:
        """What to do after Core was driven directly (certified commits)."""
        out = Outgoing()
        self._apply(result, None, now_ms, out)
        return out

    def _apply(self, result: CoreOutput, hint: int | None, now_ms: int, out: Outgoing) -> None:
        for block in result.proposed:
            out.sends.append((None, BlockPush(block.to_bytes())))
        out.proposed += result.proposed
        out.committed += result.committed
        out.decided += result.decided
        out.included += result.included
        out.accepted += len(result.accepted) + len(result.proposed)
        out.leader_timeouts += result.leader_timeouts
        for block, error in result.rejected:
            logger.warning(
                "%s rejected block %s of %s: %s",
                self.context.name_of(self.own_index),
                block,
                self.context.name_of(block.author),
                error,
            )
            out.rejected.append(error.code)
        self.sync.set_missing(self.core.block_manager.missing_blocks(), hint)
        self._fetch(now_ms, out)

    def is_commit_lagging(self) -> bool:
        """Whether the quorum is so far ahead that we should catch up on certified
        commits rather than by fetching blocks."""
        lag = self._commit_sync_lag
        if lag is None:
            return False
        return self.commit_votes.quorum_commit_index() > self.dag.last_commit_index + lag

    def block_fetching_paused(self) -> bool:
        """Missing blocks are not fetched while the commit syncer is catching us up."""
        return self.is_commit_lagging() and not self.commit_sync_stalled

    def _fetch(self, now_ms: int, out: Outgoing) -> None:
        if self.block_fetching_paused():
            # No new requests, but overdue ones still expire: their deadlines are what
            # `next_deadline_ms` reports, and a deadline that never passes would make
            # the caller tick again at once, forever.
            self.sync.expire(now_ms)
            return
        rounds = tuple(b.round for b in self.dag.last_blocks())
        for request in self.sync.poll(now_ms):
            out.sends.append(
                (request.peer, FetchBlocksRequest(request.request_id, request.refs, rounds))
            )

    def _subscribe(self, peer: int, now_ms: int, out: Outgoing) -> None:
        self._last_subscribed[peer] = now_ms
        after = self.dag.last_block_of(peer).round
        out.sends.append((peer, SubscribeRequest(after)))

    def _bad(self, sender: int, reason: str) -> None:
        self.bad_messages[sender] += 1
        self.bad_messages_total[sender] += 1
        logger.info(
            "%s: bad input from %s: %s",
            self.context.name_of(self.own_index),
            self.context.name_of(sender),
            reason,
        )
