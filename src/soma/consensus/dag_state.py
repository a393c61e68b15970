"""DagState: the accepted part of the DAG a validator keeps in memory, and what it has
committed, buffered for the store.

Blocks enter only once all their ancestors are here (the block manager sees to that), so
every reference inside this DAG resolves. Blocks below the garbage-collection round
(the last committed leader's round minus `gc_depth`) can never be committed again; they
leave memory (the store keeps them, for peers that ask) except each authority's latest
block, which a proposer may still link. Writes are buffered and flushed in one synced
batch; a node rebuilt from its store continues from exactly what was flushed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from soma.consensus.context import Context
from soma.consensus.store import ConsensusStore
from soma.types.consensus.block import BlockRef, SignedBlock, Slot, genesis_blocks
from soma.types.consensus.commit import Commit, CommitInfo, ReputationScores
from soma.types.consensus.commit_ref import CommitRef
from soma.types.digests import CommitDigest


class DagState:
    def __init__(self, context: Context, store: ConsensusStore) -> None:
        self.context = context
        self.store = store
        size = context.size
        self._genesis = {b.reference(): b for b in genesis_blocks(context.epoch, size)}
        self._blocks: dict[BlockRef, SignedBlock] = dict(self._genesis)
        self._by_slot: dict[Slot, list[SignedBlock]] = {
            b.slot(): [b] for b in self._genesis.values()
        }
        self._by_round: dict[int, list[SignedBlock]] = {0: list(self._genesis.values())}
        self._last_block: list[SignedBlock] = list(self._genesis.values())
        self._highest_round = 0
        self._committed: set[BlockRef] = set()
        self.last_committed_rounds = [0] * size
        self._last_commit: Commit | None = None
        self._gc_round = 0
        self._pending_blocks: list[SignedBlock] = []
        self._pending_commits: list[Commit] = []
        self._pending_commit_info: list[tuple[int, CommitInfo]] = []
        #: Commits made since our last proposal: the votes our next block carries.
        self._pending_commit_votes: list[CommitRef] = []
        self._last_commit_info: tuple[int, CommitInfo] | None = None
        self._recover()

    # --- recovery --------------------------------------------------------------------

    def _recover(self) -> None:
        store = self.store
        self._last_commit = store.last_commit()
        self._last_commit_info = store.last_commit_info()
        if self._last_commit_info is not None:
            rounds = self._last_commit_info[1].committed_rounds
            if len(rounds) == self.context.size:
                self.last_committed_rounds = list(rounds)
        if self._last_commit is not None:
            self._gc_round = self._compute_gc_round(self._last_commit.leader.round)
            # Blocks committed above the GC round must stay marked, or the linearizer
            # would commit them again; they were all committed by leaders at or above it.
            for commit in store.scan_commits_backward():
                for ref in commit.blocks:
                    self._committed.add(ref)
                    if ref.round > self.last_committed_rounds[ref.author]:
                        self.last_committed_rounds[ref.author] = ref.round
                if commit.leader.round < self._gc_round:
                    break
        for block in store.scan_blocks_from(self._gc_round):
            self._insert(block)
        # Each authority's latest block, even if below the GC round.
        for author in range(self.context.size):
            last = store.last_block_of(author)
            if last is not None and last.round > self._last_block[author].round:
                self._insert(last)

    def _compute_gc_round(self, leader_round: int) -> int:
        return max(0, leader_round - self.context.parameters.gc_depth)

    # --- blocks ----------------------------------------------------------------------------

    def _insert(self, block: SignedBlock) -> bool:
        ref = block.reference()
        if ref in self._blocks:
            return False
        self._blocks[ref] = block
        self._by_slot.setdefault(block.slot(), []).append(block)
        self._by_round.setdefault(block.round, []).append(block)
        if block.round > self._last_block[block.author].round:
            self._last_block[block.author] = block
        self._highest_round = max(self._highest_round, block.round)
        return True

    def accept_block(self, block: SignedBlock) -> None:
        """Add a block whose ancestors are all here; it is written at the next flush."""
        if self._insert(block):
            self._pending_blocks.append(block)

    def accept_blocks(self, blocks: Iterable[SignedBlock]) -> None:
        for block in blocks:
            self.accept_block(block)

    def get_block(self, ref: BlockRef) -> SignedBlock | None:
        return self._blocks.get(ref)

    def contains(self, ref: BlockRef) -> bool:
        return ref in self._blocks

    def get_blocks(self, refs: Sequence[BlockRef]) -> list[SignedBlock | None]:
        """From memory, else from the store (for peers asking for old blocks)."""
        found: list[SignedBlock | None] = [self._blocks.get(r) for r in refs]
        missing = [i for i, b in enumerate(found) if b is None]
        if missing:
            stored = self.store.read_blocks([refs[i] for i in missing])
            for i, block in zip(missing, stored, strict=True):
                found[i] = block
        return found

    def blocks_at_slot(self, slot: Slot) -> list[SignedBlock]:
        return list(self._by_slot.get(slot, ()))

    def blocks_at_round(self, round: int) -> list[SignedBlock]:
        return list(self._by_round.get(round, ()))

    def ancestors_at_round(self, block: SignedBlock, round: int) -> list[SignedBlock]:
        """Every block at `round` that `block` reaches through its ancestors, in
        (round, author, digest) order."""
        found: dict[BlockRef, SignedBlock] = {}
        frontier = {ref for ref in block.ancestors if ref.round >= round}
        seen = set(frontier)
        while frontier:
            next_frontier: set[BlockRef] = set()
            for ref in frontier:
                ancestor = self._blocks.get(ref)
                if ancestor is None:
                    continue  # garbage-collected: below any round a committer asks for
                if ref.round == round:
                    found[ref] = ancestor
                    continue
                for parent in ancestor.ancestors:
                    if parent.round >= round and parent not in seen:
                        seen.add(parent)
                        next_frontier.add(parent)
            frontier = next_frontier
        return [found[r] for r in sorted(found)]

    @property
    def highest_accepted_round(self) -> int:
        return self._highest_round

    def last_block_of(self, author: int) -> SignedBlock:
        return self._last_block[author]

    def last_blocks(self) -> list[SignedBlock]:
        """The latest block of every authority, by index."""
        return list(self._last_block)

    def own_blocks_after(self, author: int, round: int, limit: int) -> list[SignedBlock]:
        """`author`'s blocks above `round`, lowest first, about `limit` of them (from
        memory, or from the store for rounds already evicted). Rounds are never split:
        the last round's blocks all come (several only if the author equivocated), so a
        stream resuming after the last round sent misses none."""
        last = self._last_block[author].round
        found: list[SignedBlock] = []
        if round + 1 < self._gc_round:
            for block in self.store.scan_blocks_from(round + 1):
                if block.author != author:
                    continue
                if len(found) >= limit and block.round != found[-1].round:
                    break
                found.append(block)
            return found
        for r in range(round + 1, last + 1):
            found += self._by_slot.get(Slot(r, author), ())
            if len(found) >= limit:
                break
        return found

    def is_genesis(self, ref: BlockRef) -> bool:
        return ref in self._genesis

    # --- commits ---------------------------------------------------------------------------

    @property
    def gc_round(self) -> int:
        return self._gc_round

    @property
    def last_commit(self) -> Commit | None:
        return self._last_commit

    @property
    def last_commit_index(self) -> int:
        return 0 if self._last_commit is None else self._last_commit.index

    @property
    def last_commit_digest(self) -> CommitDigest:
        return CommitDigest.zero() if self._last_commit is None else self._last_commit.digest()

    @property
    def last_commit_timestamp_ms(self) -> int:
        return 0 if self._last_commit is None else self._last_commit.timestamp_ms

    @property
    def last_commit_leader(self) -> Slot:
        if self._last_commit is None:
            return Slot(0, 0)
        return self._last_commit.leader.slot()

    def is_committed(self, ref: BlockRef) -> bool:
        return ref in self._committed or ref in self._genesis

    def add_commit(self, commit: Commit, blocks: Sequence[SignedBlock]) -> None:
        """Record a commit and mark its blocks committed; advance the GC round."""
        for block in blocks:
            ref = block.reference()
            self._committed.add(ref)
            if block.round > self.last_committed_rounds[block.author]:
                self.last_committed_rounds[block.author] = block.round
        self._last_commit = commit
        self._pending_commits.append(commit)
        self._pending_commit_votes.append(commit.reference())
        self._gc_round = max(self._gc_round, self._compute_gc_round(commit.leader.round))

    def add_commit_info(self, index: int, scores: ReputationScores) -> None:
        info = CommitInfo(tuple(self.last_committed_rounds), scores)
        self._last_commit_info = (index, info)
        self._pending_commit_info.append((index, info))

    @property
    def last_commit_info(self) -> tuple[int, CommitInfo] | None:
        return self._last_commit_info

    def take_commit_votes(self, limit: int = 100) -> list[CommitRef]:
        """The commit votes for our next block (and forget them)."""
        votes, self._pending_commit_votes = (
            self._pending_commit_votes[:limit],
            self._pending_commit_votes[limit:],
        )
        return votes

    # --- persistence and memory -----------------------------------------------------------

    def flush(self) -> None:
        """Write everything buffered in one batch, synced to disk if it holds a block of
        our own (see `ConsensusStore`)."""
        own = self.context.own_index
        self.store.write(
            self._pending_blocks,
            self._pending_commits,
            self._pending_commit_info,
            sync=any(b.author == own for b in self._pending_blocks),
        )
        self._pending_blocks = []
        self._pending_commits = []
        self._pending_commit_info = []
        self._evict()

    def has_unflushed(self) -> bool:
        return bool(self._pending_blocks or self._pending_commits or self._pending_commit_info)

    def _evict(self) -> None:
        """Drop from memory the rounds below the GC round (the store keeps them)."""
        for round in sorted(r for r in self._by_round if 0 < r < self._gc_round):
            for block in self._by_round.pop(round):
                ref = block.reference()
                if self._last_block[block.author] is block:
                    continue
                self._blocks.pop(ref, None)
                self._committed.discard(ref)
                slot_blocks = self._by_slot.get(block.slot())
                if slot_blocks is not None:
                    slot_blocks.remove(block)
                    if not slot_blocks:
                        del self._by_slot[block.slot()]
