"""The state-sync client: follow the certified chain from peers and execute it.

Four loops, joined by bounded buffers (docs/state-sync.md):

1. **poll**: each known peer (discovery's list) is long-polled for its chain info: it
   answers as soon as it can serve a commit beyond the last it reported. A peer on
   another chain (another genesis summary) is dropped; the others' highest available
   commits set the target.
2. **summaries**: fetch certified summaries in ranges from a peer that has them and
   verify each as the next link of the chain (`ChainVerifier`), at most `max_ahead`
   commits beyond what was handed to execution.
3. **contents**: for verified summaries, fetch the commits' transactions in batches,
   from several peers at once, and check each batch against its summary.
4. **feed**: hand commits to execution in order (`AuthorityState.execute_certified`),
   which stores the certificate, runs the transactions and builds this node's own
   summary; a summary that differs from the certified one halts the node (a fork).

A peer that sends anything that fails verification, or that does not answer, is dropped
for a while and the request goes to another. Every request has a timeout. A restart
resumes after the last commit handed to execution (`AuthorityState` re-executes what it
had not finished): synced commits are stored and served onwards like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable

from soma.authority.state import AuthorityState
from soma.metrics import sync as metrics
from soma.p2p.client import P2pClient
from soma.p2p.errors import PeerCallError
from soma.p2p.peer_table import KnownPeer
from soma.sync import wire
from soma.sync.verifier import ChainVerifier, VerificationError, verify_contents
from soma.types.commit_summary import CertifiedCommitSummary, CommitContents
from soma.types.committee import Committee
from soma.types.crypto import Ed25519PublicKey
from soma.types.error import SomaError

logger = logging.getLogger(__name__)


#: How often the feed looks whether the node has entered the epoch of the next commit.
EPOCH_SWITCH_POLL_S = 0.02


@dataclasses.dataclass(frozen=True)
class SyncParameters:
    #: How often discovery's list of peers is read again (new peers are watched).
    poll_interval_s: float = 0.5
    #: How long a peer may hold back its answer to "how far can you serve?" until it
    #: can serve more (a long poll: new commits are learned as they are certified).
    long_poll_ms: int = 2_000
    #: Longest wait for any one answer.
    request_timeout_s: float = 10.0
    summaries_per_request: int = wire.MAX_SUMMARIES
    contents_per_request: int = 32
    #: Contents requests in flight at once (to different peers where possible).
    parallel_contents: int = 4
    #: Verified commits held beyond those handed to execution, at most.
    max_ahead: int = 1_024
    #: Bytes of fetched contents held at most (their transactions, as received).
    max_buffered_bytes: int = 64 * 1024 * 1024
    #: How long a peer that failed to answer, or sent bad data, is left alone.
    unreachable_ban_s: float = 10.0
    misbehaviour_ban_s: float = 600.0


@dataclasses.dataclass
class SyncPeer:
    peer_id: Ed25519PublicKey
    address: str
    #: Its highest commit it can serve (certified summary and contents), -1 unknown.
    highest: int = -1
    banned_until: float = 0.0
    in_flight: int = 0

    def usable(self, now: float) -> bool:
        return now >= self.banned_until


class StateSync:
    def __init__(
        self,
        state: Callable[[], AuthorityState],
        client: P2pClient,
        peers: Callable[[], list[KnownPeer]],
        committee_of: Callable[[int], Committee],
        parameters: SyncParameters | None = None,
        on_misbehaviour: Callable[[Ed25519PublicKey, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._client = client
        self._known_peers = peers
        self._committee_of = committee_of
        self.parameters = parameters or SyncParameters()
        self._on_misbehaviour = on_misbehaviour
        self._clock = clock
        self.peers: dict[Ed25519PublicKey, SyncPeer] = {}
        self._tasks: list[asyncio.Task[None]] = []
        #: One event per loop, all set on any change: a loop clears only its own.
        self._events: dict[str, asyncio.Event] = {}
        self._verifier: ChainVerifier | None = None
        #: Verified summaries not yet handed to execution, by index.
        self._verified: dict[int, CertifiedCommitSummary] = {}
        #: Fetched and checked contents, by index, and their size.
        self._contents: dict[int, CommitContents] = {}
        self._contents_bytes: dict[int, int] = {}
        self._requested: set[int] = set()
        #: The next commit to hand to execution.
        self.next_to_feed = 0
        self.fed = 0
        self.dropped_peers = 0

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        state = self._state()
        genesis = state.store.summaries.summary(0)
        if genesis is None:
            raise SomaError("state sync needs the genesis summary: run genesis first")
        self._genesis = genesis.digest()
        # The chain resumes from the last commit handed to execution whose certificate
        # survived (both are written unsynced; a power loss may keep one and not the
        # other): commits after it and already handled are fetched again, and only
        # their certificates are stored again.
        handled = state.handled_commit
        last = genesis
        for index in range(handled, 0, -1):
            anchor = state.store.summaries.certified_summary(index)
            if anchor is not None:
                last = anchor.data
                break
        self._verifier = ChainVerifier(last, self._committee_of)
        self.next_to_feed = last.index + 1
        loop = asyncio.get_running_loop()
        for name, job in (
            ("poll", self._poll),
            ("summaries", self._fetch_summaries),
            ("contents", self._fetch_contents),
            ("feed", self._feed),
        ):
            self._tasks.append(loop.create_task(self._guard(name, job), name=f"sync-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        self._tasks = []

    @property
    def highest_known(self) -> int:
        """The highest commit a peer said it can serve (0 before any answer)."""
        return max([p.highest for p in self.peers.values()] + [0])

    @property
    def verified_through(self) -> int:
        return -1 if self._verifier is None else self._verifier.last.index

    def _record_progress(self) -> None:
        synced = self.next_to_feed - 1
        highest = self.highest_known
        metrics.HIGHEST_SYNCED_COMMIT.set(synced)
        metrics.HIGHEST_CERTIFIED_COMMIT.set(highest)
        metrics.LAG.set(max(0, highest - synced))

    async def _guard(self, name: str, job: Callable[[], object]) -> None:
        while True:
            try:
                await job()  # type: ignore[misc]
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug here must not stop sync for good: log, pause, go on.
                logger.exception("state sync %s loop failed; restarting it", name)
                await asyncio.sleep(1.0)

    def _wake(self) -> None:
        for event in self._events.values():
            event.set()

    async def _wait_change(self, loop: str, timeout_s: float) -> None:
        """Until something changed since this loop last looked (or `timeout_s`)."""
        event = self._events.setdefault(loop, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()
        event.clear()

    # --- peers ---------------------------------------------------------------------------

    def _drop(self, peer: SyncPeer, reason: str, misbehaved: bool) -> None:
        parameters = self.parameters
        ban = parameters.misbehaviour_ban_s if misbehaved else parameters.unreachable_ban_s
        peer.banned_until = self._clock() + ban
        peer.highest = -1
        metrics.PEERS_DROPPED.labels("misbehaved" if misbehaved else "unreachable").inc()
        if misbehaved:
            self.dropped_peers += 1
            logger.warning(
                "state sync: dropped peer %s (%s): %s",
                peer.address,
                peer.peer_id.hex()[:16],
                reason,
                extra={"peer": peer.peer_id.hex()[:16]},
            )
            if self._on_misbehaviour is not None:
                self._on_misbehaviour(peer.peer_id, reason)
        self._wake()

    async def _poll(self) -> None:
        """Keep one watcher per known peer (discovery's list, refreshed)."""
        watchers: dict[Ed25519PublicKey, asyncio.Task[None]] = {}
        loop = asyncio.get_running_loop()
        try:
            while True:
                for info in self._known_peers():
                    if not info.addresses:
                        continue
                    peer = self.peers.get(info.peer_id)
                    if peer is None:
                        peer = self.peers[info.peer_id] = SyncPeer(info.peer_id, info.addresses[0])
                    else:
                        peer.address = info.addresses[0]
                    watcher = watchers.get(info.peer_id)
                    if watcher is None or watcher.done():
                        watchers[info.peer_id] = loop.create_task(self._watch_peer(peer))
                now = self._clock()
                metrics.SYNC_PEERS.set(sum(1 for p in self.peers.values() if p.usable(now)))
                await asyncio.sleep(self.parameters.poll_interval_s)
        finally:
            for watcher in watchers.values():
                watcher.cancel()

    async def _watch_peer(self, peer: SyncPeer) -> None:
        """Long-poll one peer for how far it can serve: its answer comes as soon as it
        has a new certified commit (or after `long_poll_ms`)."""
        while True:
            wait = peer.banned_until - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            known = peer.highest >= 0
            await self._ask_chain_info(
                peer,
                after=max(peer.highest, 0),
                wait_ms=self.parameters.long_poll_ms if known else 0,
            )
            self._wake()

    async def _ask_chain_info(self, peer: SyncPeer, after: int, wait_ms: int) -> None:
        try:
            info = await self._client.call(
                peer.address,
                wire.GET_CHAIN_INFO,
                wire.GetChainInfoRequest(after, wait_ms),
                wire.ChainInfo,
                timeout_s=self.parameters.request_timeout_s + wait_ms / 1000,
                peer_id=peer.peer_id,
            )
        except PeerCallError as e:
            self._drop(peer, str(e), misbehaved=e.malformed)
            return
        if info.genesis_digest != self._genesis:
            self._drop(peer, f"another chain (genesis {info.genesis_digest})", misbehaved=True)
            return
        peer.highest = info.highest_available
        self._record_progress()

    def _pick(self, wanted: int) -> SyncPeer | None:
        """The least busy usable peer that can serve commit `wanted`."""
        now = self._clock()
        able = [p for p in self.peers.values() if p.usable(now) and p.highest >= wanted]
        return min(able, key=lambda p: p.in_flight, default=None)

    # --- summaries -------------------------------------------------------------------------

    async def _fetch_summaries(self) -> None:
        assert self._verifier is not None
        while True:
            start = self._verifier.last.index + 1
            room = self.next_to_feed + self.parameters.max_ahead - start
            peer = self._pick(start) if room > 0 else None
            if peer is None:
                await self._wait_change("summaries", self.parameters.poll_interval_s)
                continue
            count = min(room, self.parameters.summaries_per_request, peer.highest - start + 1)
            peer.in_flight += 1
            try:
                answer = await self._client.call(
                    peer.address,
                    wire.GET_SUMMARIES,
                    wire.GetSummariesRequest(start, count),
                    wire.GetSummariesResponse,
                    timeout_s=self.parameters.request_timeout_s,
                    peer_id=peer.peer_id,
                )
            except PeerCallError as e:
                self._drop(peer, str(e), misbehaved=e.malformed)
                continue
            finally:
                peer.in_flight -= 1
            if not answer.summaries:
                # It said it had them: it no longer does (or never did). Ask again later.
                peer.highest = min(peer.highest, start - 1)
                continue
            for certified in answer.summaries:
                try:
                    self._verifier.verify_next(certified)
                except VerificationError as e:
                    self._drop(peer, e.message, misbehaved=True)
                    break
                self._verified[certified.data.index] = certified
            self._wake()

    # --- contents ----------------------------------------------------------------------------

    async def _fetch_contents(self) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                free = len(running) < self.parameters.parallel_contents
                batch = self._next_contents_batch() if free else []
                peer = self._pick(batch[-1]) if batch else None
                if peer is None:
                    await self._wait_change("contents", self.parameters.poll_interval_s)
                    continue
                self._requested.update(batch)
                task = asyncio.get_running_loop().create_task(self._get_contents(peer, batch))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()

    def _next_contents_batch(self) -> list[int]:
        """The first verified commits without contents (fetched or asked for), within
        the bounds on commits and bytes held."""
        if sum(self._contents_bytes.values()) >= self.parameters.max_buffered_bytes:
            return []
        batch: list[int] = []
        index = self.next_to_feed
        end = self.next_to_feed + self.parameters.max_ahead
        while index in self._verified and index < end:
            if index not in self._contents and index not in self._requested:
                batch.append(index)
                if len(batch) == self.parameters.contents_per_request:
                    break
            elif batch:
                break
            index += 1
        return batch

    async def _get_contents(self, peer: SyncPeer, batch: list[int]) -> None:
        peer.in_flight += 1
        try:
            answer = await self._client.call(
                peer.address,
                wire.GET_CONTENTS,
                wire.GetContentsRequest(tuple(batch)),
                wire.GetContentsResponse,
                timeout_s=self.parameters.request_timeout_s,
                peer_id=peer.peer_id,
            )
            for index, contents in zip(batch, answer.contents, strict=False):
                summary = self._verified.get(index)
                if summary is None:  # handed over meanwhile (fetched twice): drop it
                    continue
                verify_contents(summary.data, contents)
                self._contents[index] = contents
                size = sum(len(t.to_bytes()) for t in contents.transactions)
                self._contents_bytes[index] = size
            if len(answer.contents) < len(batch):
                peer.highest = min(peer.highest, batch[len(answer.contents)] - 1)
        except PeerCallError as e:
            self._drop(peer, str(e), misbehaved=e.malformed)
        except VerificationError as e:
            self._drop(peer, e.message, misbehaved=True)
        finally:
            peer.in_flight -= 1
            self._requested.difference_update(batch)
            self._wake()

    # --- execution ---------------------------------------------------------------------------

    async def _feed(self) -> None:
        while True:
            index = self.next_to_feed
            certified = self._verified.get(index)
            contents = self._contents.get(index)
            if certified is None or contents is None:
                await self._wait_change("feed", self.parameters.poll_interval_s)
                continue
            state = self._state()
            if certified.data.epoch != state.epoch:
                # The first commit of the next epoch: the node enters it once the
                # last one's summary is executed and certified (it replaces the state).
                await asyncio.sleep(EPOCH_SWITCH_POLL_S)
                continue
            await state.execute_certified(certified, contents.transactions)
            await asyncio.sleep(0)  # let execution run between commits
            del self._verified[index]
            del self._contents[index]
            self._contents_bytes.pop(index, None)
            self.next_to_feed = index + 1
            self.fed += 1
            metrics.COMMITS_SYNCED.inc()
            self._record_progress()
            self._wake()
