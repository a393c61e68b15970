"""Resuming consensus at a commit this node did not make itself.

Peers keep only their last `retained_commits` commits. A validator further behind than
that cannot catch up through commit sync, since the commits it lacks are gone: it
catches up by state sync instead (certified summaries, executed and checked against
their state roots) and then resumes consensus at the last commit it executed, C. For
that its consensus store must hold what it would hold had it made C itself:

* C and the commits before it whose blocks are still above C's GC round, so the
  linearizer does not commit those blocks a second time;
* the commits of the current leader-schedule window and of the two before it, so the
  reputation scores in force at C (and before the last update) are computed here exactly
  as every peer computed them, and the next update counts the same commits;
* every block those commits name.

`fetch_history` gets them from a peer and checks them: the commits run without a gap to
C and chain by previous digest, and C's digest is the one the certified summary names
(2f+1 stake signed it), so every earlier commit is fixed by the chain; each block is
verified (form and its author's signature) and is the one a commit names (by digest).
`install_history` derives the commit info and writes all of it, then prunes what lay
below; `DagState` and `Core` then recover from the store as after any restart.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

from soma.consensus.block_verifier import BlockVerifier
from soma.consensus.commit_syncer import fetch_named_blocks
from soma.consensus.context import Context
from soma.consensus.errors import ConsensusError
from soma.consensus.leader_schedule import ReputationTracker
from soma.consensus.network import wire
from soma.consensus.network.client import ConsensusClient, PeerCallError
from soma.consensus.store import ConsensusStore
from soma.types.consensus.block import BlockRef, SignedBlock
from soma.types.consensus.commit import Commit, CommitInfo, CommittedSubDag
from soma.types.consensus.commit_ref import CommitRef
from soma.types.error import SomaError

logger = logging.getLogger(__name__)

#: Commits asked for per request (the server's own cap is the same).
COMMITS_PER_REQUEST = 100

History = list[tuple[Commit, list[SignedBlock]]]


class ConsensusHistoryError(ConsensusError):
    code = "CONSENSUS_HISTORY"


def history_start(context: Context, target: int) -> int:
    """The first commit fetched to resume consensus at commit `target`."""
    return max(1, target - context.parameters.history_commits + 1)


async def fetch_history(
    client: ConsensusClient,
    context: Context,
    peers: Sequence[int],
    target: CommitRef,
    timeout_s: float,
) -> History:
    """The commits up to `target` a node needs to resume there, with their blocks, from
    the first of `peers` that serves them right; `ConsensusHistoryError` if none does."""
    errors = []
    for peer in peers:
        try:
            return await _fetch_from(client, context, peer, target, timeout_s)
        except (PeerCallError, ConsensusError, TimeoutError) as e:
            name = context.name_of(peer)
            logger.warning("history up to commit %d from %s: %s", target.index, name, e)
            errors.append(f"{name}: {e}")
    raise ConsensusHistoryError(
        f"no peer served the commits before {target}: {'; '.join(errors) or 'no peers'}"
    )


async def _fetch_from(
    client: ConsensusClient, context: Context, peer: int, target: CommitRef, timeout_s: float
) -> History:
    first = history_start(context, target.index)
    commits: list[Commit] = []
    start = first
    while start <= target.index:
        end = min(start + COMMITS_PER_REQUEST - 1, target.index)
        response = await client.fetch_commits(peer, wire.FetchCommitsRequest(start, end), timeout_s)
        if not response.commits or len(response.commits) > end - start + 1:
            raise ConsensusHistoryError(
                f"{len(response.commits)} commits for the range {start}-{end}"
            )
        for raw in response.commits:
            try:
                commit = Commit.from_bytes(raw)
            except SomaError as e:
                raise ConsensusHistoryError(f"undecodable commit: {e}") from e
            if commit.index != start:
                raise ConsensusHistoryError(f"commit {commit.index} where {start} was expected")
            commits.append(commit)
            start += 1
    verify_chain(commits, target)
    refs = list(dict.fromkeys(ref for commit in commits for ref in commit.blocks))
    blocks = await fetch_named_blocks(
        client, peer, refs, BlockVerifier(context), context, timeout_s
    )
    return [(c, [blocks[ref] for ref in c.blocks]) for c in commits]


def verify_chain(commits: Sequence[Commit], target: CommitRef) -> None:
    """Raise unless `commits` are consecutive, chain by previous digest and end at
    `target` (index and digest)."""
    if not commits:
        raise ConsensusHistoryError("no commits")
    for before, after in itertools.pairwise(commits):
        if after.index != before.index + 1:
            raise ConsensusHistoryError(f"commit {after.index} follows {before.index}")
        if after.previous_digest != before.digest():
            raise ConsensusHistoryError(f"commit {after.index} does not chain to its predecessor")
    last = commits[-1]
    if last.index != target.index or last.digest() != target.digest:
        raise ConsensusHistoryError(
            f"the history ends at commit {last.index} ({last.digest()}), not at {target}"
        )


def install_history(store: ConsensusStore, context: Context, history: History) -> None:
    """Write `history` (checked by `fetch_history`) as this node's consensus past, with
    the commit info every peer derived from it, then prune what lies below it."""
    committee = context.committee
    per_update = context.parameters.commits_per_schedule_update
    first = history[0][0].index
    # Scores are only computed over whole windows: (k * per_update, (k + 1) * per_update].
    window_start = first + (-(first - 1)) % per_update
    tracker = ReputationTracker(committee)
    committed_rounds = [0] * committee.size
    infos: list[tuple[int, CommitInfo]] = []
    blocks: dict[BlockRef, SignedBlock] = {}
    for commit, commit_blocks in history:
        for block in commit_blocks:
            blocks[block.reference()] = block
            committed_rounds[block.author] = max(committed_rounds[block.author], block.round)
        if commit.index < window_start:
            continue
        tracker.add(
            CommittedSubDag(commit, commit.leader, tuple(commit_blocks), commit.timestamp_ms)
        )
        if commit.index % per_update == 0:
            infos.append((commit.index, CommitInfo(tuple(committed_rounds), tracker.scores())))
            tracker.reset()
    store.write(list(blocks.values()), [c for c, _ in history], infos, sync=True)
    lowest_round = min(b.round for b in blocks.values()) if blocks else 0
    store.prune(commits_below=first, blocks_below_round=lowest_round, infos_below=first)
    logger.info(
        "consensus resumes at commit %d: installed commits %d-%d and %d blocks",
        history[-1][0].index,
        first,
        history[-1][0].index,
        len(blocks),
    )
