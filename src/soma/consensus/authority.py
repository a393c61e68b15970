"""ConsensusAuthority: one validator's consensus for one epoch, over gRPC.

It runs the sans-IO `ConsensusProtocol` on an asyncio loop and does only I/O around it:
a gRPC server answering peers (block subscriptions, fetches, commit ranges, latest blocks
and rounds), one subscriber task per peer streaming that peer's blocks in (reconnecting
with backoff), fetch tasks for the synchronizer's requests, a timer for the leader timeout
and minimum round delay, the CommitSyncer for catching up on certified commits, and the
CommitObserver handing commits on. It is started and stopped as a unit; the node builds a
new one for each epoch.

A peer that keeps sending invalid data is dropped for a while: its subscription is closed
and its calls are refused; the protocol has already ignored everything it sent.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from soma.consensus.amnesia_guard import recover_last_own_block
from soma.consensus.commit_observer import CommitConsumer, CommitObserver
from soma.consensus.commit_syncer import LAG_THRESHOLD, CommitSyncer
from soma.consensus.committer.status import Decision
from soma.consensus.context import Context
from soma.consensus.errors import InvalidRequestError
from soma.consensus.history import fetch_history, install_history
from soma.consensus.messages import FetchBlocksRequest as ProtocolFetch
from soma.consensus.network import wire
from soma.consensus.network.auth import PeerAuthenticator
from soma.consensus.network.client import ConsensusClient, PeerCallError
from soma.consensus.network.server import ConsensusServer, now_ms
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.protocol import ConsensusProtocol, Outgoing
from soma.consensus.store import ConsensusStore
from soma.consensus.transaction import TransactionQueue
from soma.consensus.transaction_client import TransactionClient
from soma.metrics import consensus as metrics
from soma.types.committee import Committee
from soma.types.consensus.block import SignedBlock
from soma.types.consensus.commit_ref import CommitRef
from soma.types.crypto import NetworkKeyPair, ProtocolKeyPair
from soma.types.tls import tls_identity
from soma.utils.wait import wait_event

logger = logging.getLogger(__name__)

#: Blocks per subscription stream message.
SUBSCRIPTION_BATCH = 20
#: Invalid messages from one peer before it is dropped, and for how long.
MAX_BAD_MESSAGES = 20
DROP_PEER_MS = 30_000
#: A subscription that brought no block for this long is opened again.
STALE_SUBSCRIPTION_S = 5.0
#: How often the consensus store is pruned (`ConsensusParameters.retained_commits`).
PRUNE_INTERVAL_S = 5.0
#: How long `stop` waits for its cancelled tasks before cancelling them again.
STOP_RETRY_S = 2.0


@dataclasses.dataclass(frozen=True)
class AuthorityConfig:
    committee: Committee
    own_index: int
    protocol_key: ProtocolKeyPair
    network_key: NetworkKeyPair
    parameters: ConsensusParameters = dataclasses.field(default_factory=ConsensusParameters)
    #: Where to listen ("host:port"); defaults to the committee's consensus address.
    listen_address: str | None = None
    #: Addresses to dial some peers at instead of the committee's, by authority index.
    peer_addresses: Mapping[int, str] = dataclasses.field(default_factory=dict)
    max_pending_transactions: int = 100_000
    #: Backoff between reconnections to a peer.
    min_backoff_ms: int = 100
    max_backoff_ms: int = 5_000
    #: Before proposing, learn our last proposed round from f+1 stake of peers (see
    #: `amnesia_guard`); one round trip per start.
    amnesia_guard: bool = True


class ConsensusAuthority:
    def __init__(
        self,
        config: AuthorityConfig,
        store: ConsensusStore,
        consumer: CommitConsumer,
        last_processed_commit: int = 0,
        on_fatal: Callable[[BaseException], None] | None = None,
        block_listener: Callable[[Sequence[SignedBlock]], None] | None = None,
        processed_commit: Callable[[], int] | None = None,
    ) -> None:
        """`on_fatal` is called if a task of this instance fails (a bug): the node
        should then stop, and be restarted from its store, rather than run on half-dead.
        `block_listener` sees every verified peer block before it joins the DAG
        (`ConsensusProtocol.block_listener`); it must not block. `processed_commit` says
        the last commit the consumer has durably taken in: commits after it are never
        pruned, since a restart replays them (without it, the last one delivered).
        """
        self._block_listener = block_listener
        self.config = config
        self._store = store
        self._on_fatal = on_fatal
        #: The exception that made the instance fail, if one did.
        self.failure: BaseException | None = None
        committee = config.committee
        params = config.parameters
        self.context = Context(committee, config.own_index, params)
        self._queue = TransactionQueue(
            max_pending=config.max_pending_transactions,
            max_transaction_bytes=params.max_transaction_bytes,
            max_submission_transactions=params.max_block_transactions,
            max_submission_bytes=params.max_block_bytes,
        )
        self.transaction_client = TransactionClient(self._queue, self._wake_up)
        self._consumer = consumer
        self._last_processed_commit = last_processed_commit
        self._processed_commit = processed_commit
        self._auth = PeerAuthenticator(committee, config.own_index, config.network_key)
        self._tls = tls_identity(config.network_key)
        self._client = ConsensusClient(
            committee,
            config.own_index,
            self._auth,
            self._tls,
            peer_addresses=config.peer_addresses,
        )
        self._server: ConsensusServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fetches: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._own_block = asyncio.Event()
        self._dropped_until: dict[int, int] = {}
        #: Peers whose block stream to us is open.
        self._streaming_peers: set[int] = set()
        self._stopping = False
        self._subscriptions: dict[int, int] = {}
        self._subscribers: dict[int, asyncio.Task[None]] = {}
        self._rng = random.Random()
        self._protocol: ConsensusProtocol | None = None
        self._observer: CommitObserver | None = None
        self._syncer: CommitSyncer | None = None
        self._last_gc_round = 0
        self.port: int | None = None
        #: How many times each peer was dropped for invalid messages.
        self.drops: collections.Counter[int] = collections.Counter()
        #: The round the amnesia guard learned from peers (None if it did not run).
        self.recovered_own_round: int | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def protocol(self) -> ConsensusProtocol:
        assert self._protocol is not None, "not started"
        return self._protocol

    async def start(self, resume_at: CommitRef | None = None) -> None:
        """Serve and take part. With `resume_at` (a commit this node executed through
        state sync, certified), first fetch and install the consensus history up to it
        unless the store already reaches it (`consensus.history`)."""
        config = self.config
        last = self._store.last_commit()
        if resume_at is not None and (last is None or last.index < resume_at.index):
            history = await fetch_history(
                self._client,
                self.context,
                self._peer_order(),
                resume_at,
                config.parameters.fetch_timeout_ms / 1000 * 5,
            )
            install_history(self._store, self.context, history)
        now = now_ms()
        protocol = ConsensusProtocol(
            self.context,
            self._store,
            config.protocol_key,
            self._queue,
            self._rng,
            now,
            resubscribe_after_ms=None,
            # Behind by more than about half the GC depth, peers no longer hold (in
            # memory) the blocks we would fetch: catch up on commits instead.
            commit_sync_lag=max(1, min(LAG_THRESHOLD, config.parameters.gc_depth // 2)),
        )
        protocol.block_listener = self._block_listener
        self._protocol = protocol
        self._observer = CommitObserver(protocol.dag, self._consumer, self._last_processed_commit)
        # On every start, not only with an empty store: a store restored from an old
        # backup holds blocks of ours, just not the latest ones.
        guard = config.amnesia_guard and self.context.size > 1
        if guard:
            protocol.core.hold_proposals()
        self._syncer = CommitSyncer(self, self._client, self._rng)
        self._server = ConsensusServer(self, self._auth, self._tls)
        own = config.committee.members[config.own_index]
        self.port = self._server.bind(config.listen_address or own.consensus_address)
        await self._server.start()
        self._spawn(self._observer.run(), "commit-observer")
        self._spawn(self._timer_loop(), "timer")
        self._spawn(self._syncer.run(), "commit-syncer")
        self._spawn(self._prune_loop(), "prune")
        for peer in range(self.context.size):
            if peer != config.own_index:
                self._subscribers[peer] = self._spawn(self._subscribe_loop(peer), f"sub-{peer}")
        self.dispatch(protocol.start(now))
        if guard:
            self._spawn(self._amnesia_guard(), "amnesia-guard")
        logger.info(
            "consensus authority %d (%s) started on port %d at round %d, commit %d",
            config.own_index,
            self.context.name_of(config.own_index),
            self.port,
            protocol.core.last_proposed_round,
            protocol.dag.last_commit_index,
        )

    async def stop(self) -> None:
        # End the peers' block streams first, so the server stops with no call running.
        self._stopping = True
        self._own_block.set()
        self.transaction_client.close()
        pending = set(self._tasks) | self._fetches
        while pending:
            # A task that swallowed its cancellation is cancelled again rather than
            # awaited forever: stopping must end, or the node cannot shut down.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=STOP_RETRY_S)
            for task in pending:
                logger.warning("task %s ignored its cancellation; cancelling again", task)
        self._tasks.clear()
        self._fetches.clear()
        if self._server is not None:
            await self._server.stop(0.2)
        await self._client.close()

    def _spawn(self, coro: object, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, name=name)  # type: ignore[arg-type]
        self._tasks.append(task)
        task.add_done_callback(self.task_done)
        return task

    def task_done(self, task: asyncio.Task[None]) -> None:
        """A task of ours ended. Only `stop` cancels them and none returns otherwise, so an
        exception is a bug: a consensus instance missing a task (the timer, a
        subscription) would stall without a sign, so it is reported as fatal."""
        self._fetches.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert error is not None
        logger.critical("consensus task %s failed", task.get_name(), exc_info=error)
        self.failure = error
        if self._on_fatal is not None:
            self._on_fatal(error)

    # --- the protocol's outputs ------------------------------------------------------------

    def dispatch(self, out: Outgoing) -> None:
        """Carry out what the protocol asked for."""
        protocol = self.protocol
        client = self.transaction_client
        for token, ref in out.included:
            client.on_included(token, ref)
        if out.proposed:
            event, self._own_block = self._own_block, asyncio.Event()
            event.set()
        for peer, message in out.sends:
            if isinstance(message, ProtocolFetch) and peer is not None:
                task = asyncio.get_running_loop().create_task(self._fetch(peer, message))
                self._fetches.add(task)
                task.add_done_callback(self.task_done)
            # Pushes go out through the peers' subscriptions; the gRPC subscriber tasks
            # reconnect by themselves, so SubscribeRequests are not needed here.
        if self._syncer is not None and protocol.is_commit_lagging():
            self._syncer.wake()
        if out.committed:
            assert self._observer is not None
            self._observer.push(out.committed)
            for subdag in out.committed:
                client.on_committed(subdag)
        _record_metrics(protocol, out)
        gc_round = protocol.dag.gc_round
        if gc_round > self._last_gc_round:
            self._last_gc_round = gc_round
            client.on_gc_round(gc_round)
        self._check_bad_peers()
        self._wake.set()

    async def _amnesia_guard(self) -> None:
        protocol = self.protocol
        result = await recover_last_own_block(
            self.context.committee,
            self.context.own_index,
            self._client,
            protocol.core.verifier,
            self.report_bad_request,
        )
        for peer, block in result.blocks:
            self.dispatch(protocol.receive_blocks(peer, [block.to_bytes()], now_ms(), False))
        protocol.core.resume_proposals(result.last_round)
        self.recovered_own_round = result.last_round
        log = logger.warning if result.last_round > 0 else logger.info
        log(
            "amnesia guard: peers %s hold our blocks up to round %d; proposing above it",
            ", ".join(self.context.name_of(p) for p in result.answered),
            result.last_round,
        )
        self.dispatch_tick()

    def _wake_up(self) -> None:
        self._wake.set()

    def _peer_order(self) -> list[int]:
        peers = [p for p in range(self.context.size) if p != self.context.own_index]
        self._rng.shuffle(peers)
        return peers

    async def _prune_loop(self) -> None:
        while True:
            await asyncio.sleep(PRUNE_INTERVAL_S)
            self.prune()

    def prune(self) -> None:
        """Drop commits older than `retained_commits` behind the last one (never one the
        consumer has not durably taken in), and the blocks only they named; in steps of
        a tenth of the retention, so the deletes stay rare."""
        dag = self.protocol.dag
        store = self._store
        retained = self.context.parameters.retained_commits
        processed = (
            self._processed_commit()
            if self._processed_commit is not None
            else self._observer.delivered_index
            if self._observer is not None
            else 0
        )
        keep_from = min(dag.last_commit_index - retained, processed) + 1
        first = store.first_commit_index()
        if first is None or keep_from - first < max(1, retained // 10):
            return
        below = store.commit(keep_from - 1)
        if below is None:
            return
        # Blocks of commits from `keep_from` on lie above the GC round of the commit before.
        blocks_below = max(0, below.leader.round - self.context.parameters.gc_depth)
        store.prune(keep_from, blocks_below, keep_from, dag.last_blocks())
        logger.info("pruned commits below %d, blocks below round %d", keep_from, blocks_below)

    async def _timer_loop(self) -> None:
        protocol = self.protocol
        while True:
            now = now_ms()
            deadline = protocol.next_deadline_ms(now)
            # Always give up the loop for a moment: a deadline that a tick fails to move
            # would otherwise starve every other task (the network among them).
            wait_s = max(deadline - now, 1) / 1000
            await wait_event(self._wake, wait_s)
            self._wake.clear()
            self.dispatch_tick()

    def dispatch_tick(self) -> None:
        out = self.protocol.tick(now_ms())
        self.dispatch(out)
        # dispatch() sets the wake flag for other waiters; a tick needs no second tick.
        if not (out.proposed or out.committed or out.sends):
            self._wake.clear()

    # --- peers -----------------------------------------------------------------------------

    async def _subscribe_loop(self, peer: int) -> None:
        backoff = self.config.min_backoff_ms
        while True:
            if self.is_dropped(peer):
                await asyncio.sleep(1.0)
                continue
            after = self.protocol.dag.last_block_of(peer).round
            stream = self._client.subscribe_blocks(peer, after)
            try:
                while not self.is_dropped(peer):
                    # A stream can go stale without breaking (the peer's side of it
                    # stalled, a link that drops packets silently): no block for a while
                    # means resubscribing, whatever else the peer still sends us.
                    async with asyncio.timeout(STALE_SUBSCRIPTION_S):
                        batch = await anext(stream)
                    self._streaming(peer, True)
                    backoff = self.config.min_backoff_ms
                    self.dispatch(self.protocol.receive_blocks(peer, batch.blocks, now_ms()))
            except StopAsyncIteration:
                pass
            except TimeoutError:
                logger.info(
                    "no block from %s in %.0f s: resubscribing",
                    self.context.name_of(peer),
                    STALE_SUBSCRIPTION_S,
                    extra={"peer": self.context.name_of(peer)},
                )
            except PeerCallError as e:
                logger.debug("subscription to %s broke: %s", self.context.name_of(peer), e)
                if e.malformed:
                    self.report_bad_request(peer, str(e))
            finally:
                self._streaming(peer, False)
                await stream.aclose()
            await asyncio.sleep(backoff / 1000)
            backoff = min(backoff * 2, self.config.max_backoff_ms)

    def _streaming(self, peer: int, live: bool) -> None:
        """Whether `peer`'s block stream to us is open (the connected-peers gauge)."""
        if live:
            self._streaming_peers.add(peer)
        else:
            self._streaming_peers.discard(peer)
        metrics.CONNECTED_PEERS.set(len(self._streaming_peers))

    async def _fetch(self, peer: int, message: ProtocolFetch) -> None:
        timeout_s = self.context.parameters.fetch_timeout_ms / 1000
        request = wire.FetchBlocksRequest(message.refs, message.highest_accepted_rounds)
        try:
            batch = await self._client.fetch_blocks(peer, request, timeout_s)
        except PeerCallError as e:
            logger.debug("fetch from %s failed: %s", self.context.name_of(peer), e)
            if e.malformed:
                self.report_bad_request(peer, str(e))
            self.dispatch(self.protocol.fetch_failed(message.request_id, now_ms()))
            return
        self.dispatch(
            self.protocol.receive_fetched(peer, message.request_id, batch.blocks, now_ms())
        )

    def _check_bad_peers(self) -> None:
        bad = self.protocol.bad_messages
        for peer, count in list(bad.items()):
            if count >= MAX_BAD_MESSAGES:
                logger.warning(
                    "dropping peer %s for %d invalid messages",
                    self.context.name_of(peer),
                    count,
                    extra={"peer": self.context.name_of(peer)},
                )
                self._dropped_until[peer] = now_ms() + DROP_PEER_MS
                self.drops[peer] += 1
                del bad[peer]

    # --- the server side (ConsensusServiceHandler) ----------------------------------------

    @property
    def synced_commits(self) -> int:
        """Commits installed from certified commit ranges (rather than decided here)."""
        return 0 if self._syncer is None else self._syncer.synced_commits

    def is_dropped(self, peer: int) -> bool:
        until = self._dropped_until.get(peer)
        if until is None:
            return False
        if now_ms() >= until:
            del self._dropped_until[peer]
            return False
        return True

    def report_bad_request(self, peer: int, reason: str) -> None:
        """Count invalid input from `peer` (a request, or an answer to one of ours)."""
        name = self.context.name_of(peer)
        logger.info("bad input from %s: %s", name, reason, extra={"peer": name})
        self.protocol.bad_messages[peer] += 1
        self.protocol.bad_messages_total[peer] += 1
        self._check_bad_peers()

    async def subscribe_blocks(
        self, peer: int, request: wire.SubscribeBlocksRequest
    ) -> AsyncIterator[wire.BlockBatch]:
        # One stream per peer: a new subscription (the peer reconnected) ends the old.
        generation = self._subscriptions[peer] = self._subscriptions.get(peer, 0) + 1
        last = request.after_round
        while not (self._stopping or self.is_dropped(peer)):
            if self._subscriptions[peer] != generation:
                return
            event = self._own_block
            # A subscriber far behind gets our blocks from the GC round on: older ones
            # no longer matter here, and it catches up on certified commits instead.
            last = max(last, self.protocol.dag.gc_round)
            blocks = self.protocol.own_blocks_after(last, SUBSCRIPTION_BATCH)
            if blocks:
                last = blocks[-1].round
                yield wire.BlockBatch(tuple(b.to_bytes() for b in blocks))
                continue
            await event.wait()

    async def fetch_blocks(self, peer: int, request: wire.FetchBlocksRequest) -> wire.BlockBatch:
        blocks = self.protocol.answer_fetch(request.refs, request.highest_accepted_rounds)
        return wire.BlockBatch(tuple(b.to_bytes() for b in blocks))

    async def fetch_commits(
        self, peer: int, request: wire.FetchCommitsRequest
    ) -> wire.FetchCommitsResponse:
        assert self._syncer is not None
        response: wire.FetchCommitsResponse = self._syncer.answer(request)
        return response

    async def fetch_latest_blocks(
        self, peer: int, request: wire.FetchLatestBlocksRequest
    ) -> wire.BlockBatch:
        dag = self.protocol.dag
        size = self.context.size
        if len(request.authorities) > size:
            raise InvalidRequestError(f"{len(request.authorities)} authorities asked of {size}")
        blocks = [dag.last_block_of(a) for a in dict.fromkeys(request.authorities) if a < size]
        return wire.BlockBatch(tuple(b.to_bytes() for b in blocks if b.round > 0))

    async def latest_rounds(
        self, peer: int, request: wire.LatestRoundsRequest
    ) -> wire.LatestRoundsResponse:
        protocol = self.protocol
        accepted = tuple(b.round for b in protocol.dag.last_blocks())
        received = tuple(
            max(a, r) for a, r in zip(accepted, protocol.highest_received, strict=True)
        )
        return wire.LatestRoundsResponse(received, accepted)


def _record_metrics(protocol: ConsensusProtocol, out: Outgoing) -> None:
    """What one step of the protocol did, in the consensus metrics."""
    if out.proposed:
        metrics.BLOCKS_PROPOSED.inc(len(out.proposed))
        metrics.ROUND.set(out.proposed[-1].round)
    if out.accepted:
        metrics.BLOCKS_ACCEPTED.inc(out.accepted)
        metrics.HIGHEST_ACCEPTED_ROUND.set(protocol.dag.highest_accepted_round)
    for reason in out.rejected:
        metrics.BLOCKS_REJECTED.labels(reason).inc()
    if out.leader_timeouts:
        metrics.LEADER_TIMEOUTS.inc(out.leader_timeouts)
    for status in out.decided:
        if status.decided:
            metrics.LEADER_DECISIONS.labels(
                "committed" if status.decision is Decision.COMMIT else "skipped",
                "direct" if status.direct else "indirect",
            ).inc()
    if out.committed:
        metrics.COMMITS.inc(len(out.committed))
        metrics.COMMIT_INDEX.set(out.committed[-1].index)
        now_s = now_ms() / 1000
        for subdag in out.committed:
            for block in subdag.blocks:
                metrics.COMMIT_LATENCY.observe(max(0.0, now_s - block.timestamp_ms / 1000))
    metrics.MISSING_BLOCKS.set(protocol.sync.missing_count())
