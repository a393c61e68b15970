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
that answers with anything else, or too slowly, is logged and another one is asked; a
range that failed is retried after a pause, and no range is fetched more than a window
ahead of our last commit, so memory stays bounded whatever peers do. If no range could
be installed for a while although we lag (f Byzantine validators can vote for commits no
one can certify), the syncer says it is stalled and block fetching resumes.

The serving side (`answer`) returns stored commits and, for the last one, blocks voting
for it (just enough stake of them), found in the rounds just after its leader (an honest
validator votes for a commit in the block it proposes next).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from soma.consensus.block_verifier import BlockVerifier
from soma.consensus.committer.base import SafetyViolationError
from soma.consensus.context import Context
from soma.consensus.dag_state import DagState
from soma.consensus.errors import BlockRejectedError, CertifiedCommitError, ConsensusError
from soma.consensus.network import wire
from soma.consensus.network.client import ConsensusClient, PeerCallError
from soma.consensus.network.server import now_ms
from soma.types.committee import Committee
from soma.types.consensus.block import BlockRef, SignedBlock
from soma.types.consensus.commit import Commit
from soma.types.consensus.commit_ref import CommitRef
from soma.types.error import SomaError
from soma.utils.wait import wait_event

if TYPE_CHECKING:
    from soma.consensus.authority import ConsensusAuthority

logger = logging.getLogger(__name__)

#: Commits per fetched range, ranges fetched at once, and how far behind the quorum we
#: must be before fetching commits rather than blocks.
COMMITS_PER_FETCH = 100
PARALLEL_FETCHES = 4
LAG_THRESHOLD = 20
#: Ranges are only fetched this far ahead of our last commit.
MAX_COMMITS_AHEAD = PARALLEL_FETCHES * COMMITS_PER_FETCH
#: How many rounds after a commit's leader to look for blocks voting for it, and how
#: many of a range's last commits the server tries before giving up on finding votes.
VOTE_SCAN_ROUNDS = 40
TRIM_CANDIDATES = 6
CHECK_INTERVAL_S = 0.5
#: One peer's time to answer a whole range (commits and blocks), and the pause before a
#: range that failed with every peer is asked again.
RANGE_TIMEOUT_S = 30.0
RETRY_AFTER_S = 1.0
#: No range installed for this long while lagging: stalled.
STALL_AFTER_S = 10.0


class CommitSyncError(ConsensusError):
    code = "COMMIT_SYNC"


class CommitsPrunedError(ConsensusError):
    """Asked for commits this node no longer keeps (`retained_commits`)."""

    code = "COMMITS_PRUNED"


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
        self._failed_at: dict[int, float] = {}
        self._progress_at = time.monotonic()
        self._was_lagging = False
        self.synced_commits = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the lag now rather than at the next interval."""
        self._wake.set()

    # --- the fetching side -----------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                await wait_event(self._wake, CHECK_INTERVAL_S)
                self._wake.clear()
                self._schedule()
                self._apply_ready()
        finally:
            tasks = list(self._in_flight.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _schedule(self) -> None:
        protocol = self._authority.protocol
        local = protocol.dag.last_commit_index
        for start in [s for s in self._ready if s + len(self._ready[s]) - 1 <= local]:
            del self._ready[start]
        lagging = protocol.is_commit_lagging()
        now = time.monotonic()
        if lagging and not self._was_lagging:
            self._progress_at = now
        self._was_lagging = lagging
        stalled = lagging and now - self._progress_at > STALL_AFTER_S
        if stalled and not protocol.commit_sync_stalled:
            logger.warning(
                "commit sync made no progress for %.0f s at commit %d; fetching blocks instead",
                STALL_AFTER_S,
                local,
            )
        protocol.commit_sync_stalled = stalled
        if not lagging:
            return
        target = min(protocol.commit_votes.quorum_commit_index(), local + MAX_COMMITS_AHEAD)
        start = local + 1
        while start <= target and len(self._in_flight) < PARALLEL_FETCHES:
            end = min(start + COMMITS_PER_FETCH - 1, target)
            failed = self._failed_at.get(start)
            fresh = failed is None or now - failed >= RETRY_AFTER_S
            if start not in self._in_flight and start not in self._ready and fresh:
                task = asyncio.get_running_loop().create_task(
                    self._fetch_range(start, end), name=f"commit-range-{start}"
                )
                self._in_flight[start] = task
                task.add_done_callback(self._range_done)
            start = end + 1

    def _range_done(self, task: asyncio.Task[None]) -> None:
        for start, running in list(self._in_flight.items()):
            if running is task:
                del self._in_flight[start]
        # A bug in a range task must not vanish with it.
        self._authority.task_done(task)

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
                async with asyncio.timeout(RANGE_TIMEOUT_S):
                    fetched = await self._fetch_from(peer, start, end)
            except (PeerCallError, CommitSyncError, TimeoutError) as e:
                name = self._authority.context.name_of(peer)
                logger.info("commit range %d-%d from %s: %s", start, end, name, e)
                continue
            self._failed_at.pop(start, None)
            self._ready[start] = fetched
            self._apply_ready()
            return
        self._failed_at[start] = time.monotonic()

    async def _fetch_from(
        self, peer: int, start: int, end: int
    ) -> list[tuple[Commit, list[SignedBlock]]]:
        authority = self._authority
        params = authority.context.parameters
        timeout_s = params.fetch_timeout_ms / 1000 * 5
        response = await self._client.fetch_commits(
            peer, wire.FetchCommitsRequest(start, end), timeout_s
        )
        size = end - start + 1
        if len(response.commits) > size:
            raise CommitSyncError(
                f"{len(response.commits)} commits for a range of {end - start + 1}"
            )
        try:
            commits = [Commit.from_bytes(c) for c in response.commits]
        except SomaError as e:
            raise CommitSyncError(f"undecodable commit: {e}") from e
        certifiers = self._verified_certifiers(response.certifier_blocks)
        verify_commit_range(authority.context.committee, start, commits, certifiers)
        wanted = [ref for commit in commits for ref in commit.blocks]
        blocks = await self._fetch_blocks(peer, wanted, timeout_s)
        return [(c, [blocks[ref] for ref in c.blocks]) for c in commits]

    def _verified_certifiers(self, raw: Sequence[bytes]) -> list[SignedBlock]:
        """At most one block per authority, so an answer padded with blocks costs one
        signature check per committee member at most."""
        committee = self._authority.context.committee
        if len(raw) > committee.size:
            raise CommitSyncError(f"{len(raw)} certifier blocks for {committee.size} authorities")
        blocks = self._verified_blocks(raw)
        if len({b.author for b in blocks}) != len(blocks):
            raise CommitSyncError("two certifier blocks of one authority")
        return blocks

    def _verified_blocks(self, raw: Iterable[bytes]) -> list[SignedBlock]:
        return decode_verified_blocks(self._authority.protocol.core.verifier, raw)

    async def _fetch_blocks(
        self, peer: int, refs: Sequence[BlockRef], timeout_s: float
    ) -> dict[BlockRef, SignedBlock]:
        dag = self._authority.protocol.dag
        held = {
            ref: block
            for ref, block in zip(refs, dag.get_blocks(list(refs)), strict=True)
            if block is not None
        }
        fetched = await fetch_named_blocks(
            self._client,
            peer,
            [ref for ref in refs if ref not in held],
            self._authority.protocol.core.verifier,
            self._authority.context,
            timeout_s,
        )
        return held | fetched

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
            except CertifiedCommitError as e:
                # Certified by a quorum yet not following ours: our own chain differs
                # from the quorum's, which no honest node's can. Stop loudly.
                raise SafetyViolationError(f"certified commits do not extend ours: {e}") from e
            self.synced_commits += len(out.committed)
            self._progress_at = time.monotonic()
            protocol.commit_sync_stalled = False
            logger.info("synced commits %d-%d", fresh[0][0].index, protocol.dag.last_commit_index)
            authority.dispatch(protocol.apply_core_output(out, now_ms()))

    # --- the serving side ------------------------------------------------------------------

    def answer(self, request: wire.FetchCommitsRequest) -> wire.FetchCommitsResponse:
        dag = self._authority.protocol.dag
        end = min(request.end, request.start + COMMITS_PER_FETCH - 1, dag.last_commit_index)
        if request.start < 1 or end < request.start:
            return wire.FetchCommitsResponse((), ())
        first = dag.store.first_commit_index()
        if first is not None and request.start < first:
            raise CommitsPrunedError(
                f"commits below {first} are pruned here; a node that far behind catches up"
                " by state sync"
            )
        commits = list(dag.store.scan_commits(request.start, end))
        # The newest commits may not have a quorum of votes yet: end the range at the
        # last of its final few that has (one scan of the rounds after them finds all).
        candidates = commits[-TRIM_CANDIDATES:]
        if not candidates:
            return wire.FetchCommitsResponse((), ())
        votes = self._votes_for(candidates)
        for i in range(len(commits) - 1, len(commits) - 1 - len(candidates), -1):
            certifiers = votes.get(commits[i].reference())
            if certifiers is not None:
                kept = commits[: i + 1]
                return wire.FetchCommitsResponse(
                    tuple(c.to_bytes() for c in kept), tuple(b.to_bytes() for b in certifiers)
                )
        return wire.FetchCommitsResponse((), ())

    def _votes_for(self, commits: Sequence[Commit]) -> dict[CommitRef, list[SignedBlock]]:
        """For each of `commits` that has them, blocks of distinct authorities voting for
        it with just a quorum of stake."""
        dag = self._authority.protocol.dag
        committee = self._authority.context.committee
        wanted = {c.reference() for c in commits}
        voters: dict[CommitRef, dict[int, SignedBlock]] = {ref: {} for ref in wanted}
        stake = dict.fromkeys(wanted, 0)
        first = min(c.leader.round for c in commits) + 1
        last = max(c.leader.round for c in commits) + VOTE_SCAN_ROUNDS
        for block in _blocks_in_rounds(dag, first, last):
            for vote in block.block.commit_votes:
                if vote not in wanted or stake[vote] >= committee.quorum_threshold:
                    continue
                if block.author not in voters[vote]:
                    voters[vote][block.author] = block
                    stake[vote] += committee.members[block.author].stake
        return {
            ref: list(by_author.values())
            for ref, by_author in voters.items()
            if stake[ref] >= committee.quorum_threshold
        }


def decode_verified_blocks(verifier: BlockVerifier, raw: Iterable[bytes]) -> list[SignedBlock]:
    """Decode each block and check its form and signature; `CommitSyncError` on the
    first that fails."""
    blocks = []
    for data in raw:
        try:
            block = SignedBlock.from_bytes(data)
            verifier.verify(block, now_ms())
        except (SomaError, BlockRejectedError) as e:
            raise CommitSyncError(f"invalid block: {e}") from e
        blocks.append(block)
    return blocks


async def fetch_named_blocks(
    client: ConsensusClient,
    peer: int,
    refs: Sequence[BlockRef],
    verifier: BlockVerifier,
    context: Context,
    timeout_s: float,
) -> dict[BlockRef, SignedBlock]:
    """The blocks `refs` names, from `peer`, each verified (form and signature) and kept
    only if it is one asked for (its digest is in its reference)."""
    found: dict[BlockRef, SignedBlock] = {}
    needed = list(refs)
    cap = context.parameters.max_blocks_per_fetch
    # Claim to hold everything so the server sends only what was asked for.
    everything = tuple([2**32 - 1] * context.size)
    while needed:
        chunk = needed[:cap]
        batch = await client.fetch_blocks(
            peer, wire.FetchBlocksRequest(tuple(chunk), everything), timeout_s
        )
        if len(batch.blocks) > len(chunk):
            raise CommitSyncError(f"{len(batch.blocks)} blocks for {len(chunk)} asked")
        wanted = set(chunk)
        for block in decode_verified_blocks(verifier, batch.blocks):
            if block.reference() in wanted:
                found[block.reference()] = block
        remaining = [r for r in needed if r not in found]
        if len(remaining) == len(needed):
            # A response may stop early at its byte cap, but never at nothing.
            raise CommitSyncError(f"{len(remaining)} committed blocks not returned")
        needed = remaining
    return found


def _blocks_in_rounds(dag: DagState, first: int, last: int) -> Iterator[SignedBlock]:
    """Blocks with round in [first, last], from memory where the DAG still holds them."""
    if first > dag.gc_round:
        for round in range(first, min(last, dag.highest_accepted_round) + 1):
            yield from dag.blocks_at_round(round)
        return
    for block in dag.store.scan_blocks_from(first):
        if block.round > last:
            return
        yield block
