"""CommitSyncer: catching up on commits the quorum has already made.

Blocks carry commit votes (references to the commits their author made). From every
verified block received (accepted into the DAG or still waiting for ancestors),
`CommitVoteMonitor` knows the highest commit index that 2f+1 stake has voted for. When
that is well ahead of our last commit (we were cut off, or restarted after a long time),
fetching blocks ancestor by ancestor would be slow, so the syncer pauses those fetches
and instead fetches commit ranges from random peers, several in parallel, and for each
range checks that:

* the commits have consecutive indices and chain by previous digest;
* 2f+1 stake of distinct, valid, signed blocks vote for the range's last commit (so the
  whole range is what the quorum committed: the chain fixes every earlier one);
* the blocks the commits name, fetched next, are exactly those (checked by digest) and
  carry valid signatures.

Ranges are then handed to Core in index order, each linked to our last commit. A peer
that answers with anything else is logged and another one is asked.

The serving side (`answer`) returns stored commits and, for the last one, the blocks
that vote for it, found in the rounds just after its leader (an honest validator votes
for a commit in the block it proposes next).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from soma.consensus.errors import BlockRejectedError, ConsensusError
from soma.consensus.network import wire
from soma.consensus.network.client import ConsensusClient, PeerCallError
from soma.consensus.network.server import now_ms
from soma.types.committee import Committee
from soma.types.consensus.block import BlockRef, SignedBlock
from soma.types.consensus.commit import Commit
from soma.types.error import SomaError

if TYPE_CHECKING:
    from soma.consensus.authority import ConsensusAuthority

logger = logging.getLogger(__name__)

#: Commits per fetched range, ranges fetched at once, and how far behind the quorum we
#: must be before fetching commits rather than blocks.
COMMITS_PER_FETCH = 100
PARALLEL_FETCHES = 4
LAG_THRESHOLD = 20
#: How many rounds after a commit's leader to look for blocks voting for it.
VOTE_SCAN_ROUNDS = 40
CHECK_INTERVAL_S = 0.5


class CommitSyncError(ConsensusError):
    code = "COMMIT_SYNC"


def verify_commit_range(
    committee: Committee,
    start: int,
    commits: Sequence[Commit],
    certifiers: Sequence[SignedBlock],
) -> None:
    """Raise `CommitSyncError` unless `commits` run from `start` without a gap, chain by
    digest, and `certifiers` (already signature-checked) hold 2f+1 stake of votes for the
    last one."""
    if not commits:
        raise CommitSyncError("empty commit range")
    for i, commit in enumerate(commits):
        if commit.index != start + i:
            raise CommitSyncError(f"commit {commit.index} where {start + i} was expected")
        if i > 0 and commit.previous_digest != commits[i - 1].digest():
            raise CommitSyncError(f"commit {commit.index} does not chain to its predecessor")
    last = commits[-1].reference()
    voters: set[int] = set()
    for block in certifiers:
        if last in block.block.commit_votes:
            voters.add(block.author)
    stake = sum(committee.members[a].stake for a in voters)
    if stake < committee.quorum_threshold:
        raise CommitSyncError(
            f"only {stake} stake votes for commit {last.index}; {committee.quorum_threshold} needed"
        )


class CommitSyncer:
    def __init__(
        self, authority: ConsensusAuthority, client: ConsensusClient, rng: random.Random
    ) -> None:
        self._authority = authority
        self._client = client
        self._rng = rng
        self._ready: dict[int, list[tuple[Commit, list[SignedBlock]]]] = {}
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self.synced_commits = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the lag now rather than at the next interval."""
        self._wake.set()

    # --- the fetching side -----------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), CHECK_INTERVAL_S)
                self._wake.clear()
                self._schedule()
                self._apply_ready()
        finally:
            for task in self._in_flight.values():
                task.cancel()

    def _schedule(self) -> None:
        protocol = self._authority.protocol
        local = protocol.dag.last_commit_index
        target = protocol.commit_votes.quorum_commit_index()
        for start in [s for s in self._ready if s + len(self._ready[s]) - 1 <= local]:
            del self._ready[start]
        if not protocol.is_commit_lagging():
            return
        start = local + 1
        while start <= target and len(self._in_flight) < PARALLEL_FETCHES:
            end = min(start + COMMITS_PER_FETCH - 1, target)
            if start not in self._in_flight and start not in self._ready:
                task = asyncio.get_running_loop().create_task(self._fetch_range(start, end))
                self._in_flight[start] = task
                task.add_done_callback(self._range_done)
            start = end + 1

    def _range_done(self, task: asyncio.Task[None]) -> None:
        for start, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[start]

    def _peers(self) -> list[int]:
        authority = self._authority
        peers = [
            p
            for p in range(authority.context.size)
            if p != authority.context.own_index and not authority.is_dropped(p)
        ]
        self._rng.shuffle(peers)
        return peers

    async def _fetch_range(self, start: int, end: int) -> None:
        for peer in self._peers():
            try:
                fetched = await self._fetch_from(peer, start, end)
            except (PeerCallError, CommitSyncError) as e:
                logger.info("commit range %d-%d from %d: %s", start, end, peer, e)
                continue
            self._ready[start] = fetched
            self._apply_ready()
            return

    async def _fetch_from(
        self, peer: int, start: int, end: int
    ) -> list[tuple[Commit, list[SignedBlock]]]:
        authority = self._authority
        params = authority.context.parameters
        timeout_s = params.fetch_timeout_ms / 1000 * 5
        response = await self._client.fetch_commits(
            peer, wire.FetchCommitsRequest(start, end), timeout_s
        )
        try:
            commits = [Commit.from_bytes(c) for c in response.commits]
        except SomaError as e:
            raise CommitSyncError(f"undecodable commit: {e}") from e
        certifiers = self._verified_blocks(response.certifier_blocks)
        verify_commit_range(authority.context.committee, start, commits, certifiers)
        wanted = [ref for commit in commits for ref in commit.blocks]
        blocks = await self._fetch_blocks(peer, wanted, timeout_s)
        return [(c, [blocks[ref] for ref in c.blocks]) for c in commits]

    def _verified_blocks(self, raw: Iterable[bytes]) -> list[SignedBlock]:
        verifier = self._authority.protocol.core.verifier
        blocks = []
        for data in raw:
            try:
                block = SignedBlock.from_bytes(data)
                verifier.verify(block, now_ms())
            except (SomaError, BlockRejectedError) as e:
                raise CommitSyncError(f"invalid block: {e}") from e
            blocks.append(block)
        return blocks

    async def _fetch_blocks(
        self, peer: int, refs: Sequence[BlockRef], timeout_s: float
    ) -> dict[BlockRef, SignedBlock]:
        dag = self._authority.protocol.dag
        found: dict[BlockRef, SignedBlock] = {}
        needed = []
        for ref, block in zip(refs, dag.get_blocks(list(refs)), strict=True):
            if block is not None:
                found[ref] = block
            else:
                needed.append(ref)
        cap = self._authority.context.parameters.max_blocks_per_fetch
        # Claim to hold everything so the server sends only what was asked for.
        everything = tuple([2**32 - 1] * self._authority.context.size)
        while needed:
            chunk = needed[:cap]
            batch = await self._client.fetch_blocks(
                peer, wire.FetchBlocksRequest(tuple(chunk), everything), timeout_s
            )
            wanted = set(chunk)
            for block in self._verified_blocks(batch.blocks):
                if block.reference() in wanted:
                    found[block.reference()] = block
            remaining = [r for r in needed if r not in found]
            if len(remaining) == len(needed):
                # A response may stop early at its byte cap, but never at nothing.
                raise CommitSyncError(f"{len(remaining)} committed blocks not returned")
            needed = remaining
        return found

    def _apply_ready(self) -> None:
        authority = self._authority
        protocol = authority.protocol
        while True:
            local = protocol.dag.last_commit_index
            batch = None
            for start, commits in self._ready.items():
                if start <= local + 1 < start + len(commits):
                    batch = self._ready.pop(start)
                    break
            if batch is None:
                return
            fresh = [(c, b) for c, b in batch if c.index > local]
            try:
                out = protocol.core.add_certified_commits(fresh, now_ms())
            except ConsensusError as e:
                logger.warning("certified commits refused: %s", e)
                return
            self.synced_commits += len(out.committed)
            logger.info("synced commits %d-%d", fresh[0][0].index, protocol.dag.last_commit_index)
            authority.dispatch(protocol.apply_core_output(out, now_ms()))

    # --- the serving side ------------------------------------------------------------------

    def answer(self, request: wire.FetchCommitsRequest) -> wire.FetchCommitsResponse:
        dag = self._authority.protocol.dag
        store = dag.store
        end = min(request.end, request.start + COMMITS_PER_FETCH - 1, dag.last_commit_index)
        if request.start < 1 or end < request.start:
            return wire.FetchCommitsResponse((), ())
        commits = list(store.scan_commits(request.start, end))
        committee = self._authority.context.committee
        # The newest commits may not have a quorum of votes yet: trim to one that has.
        while commits:
            last = commits[-1]
            votes = self._votes_for(last)
            stake = sum(committee.members[b.author].stake for b in votes)
            if stake >= committee.quorum_threshold:
                return wire.FetchCommitsResponse(
                    tuple(c.to_bytes() for c in commits), tuple(b.to_bytes() for b in votes)
                )
            commits.pop()
            if len(commits) < max(0, end - request.start + 1 - 5):
                break
        return wire.FetchCommitsResponse((), ())

    def _votes_for(self, commit: Commit) -> list[SignedBlock]:
        dag = self._authority.protocol.dag
        ref = commit.reference()
        by_author: dict[int, SignedBlock] = {}
        limit = commit.leader.round + VOTE_SCAN_ROUNDS
        for block in dag.store.scan_blocks_from(commit.leader.round + 1):
            if block.round > limit:
                break
            if block.author not in by_author and ref in block.block.commit_votes:
                by_author[block.author] = block
        return list(by_author.values())
