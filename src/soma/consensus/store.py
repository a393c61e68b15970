"""The consensus store: blocks, commits and leader-schedule commit info, on `soma.storage`.

Blocks are keyed by (round, author, digest), so a scan from a round yields the DAG in
round order, which is how a restarting node reloads the part of the DAG it still needs.
Everything DagState buffers is written in one atomic batch, so after a crash the store
holds a prefix of what the node did: a block is never stored without its ancestors'
decisions, and a commit never without the blocks it names. A batch holding a block of our
own is synced to disk before the block can be broadcast (a power loss must not make us
forget a block peers have seen, or we could sign a second one for its round); the others
are not, since what they hold can be fetched from peers again or derived again.

Old commits and blocks are pruned (`prune`): the node keeps what its own recovery and its
peers' commit sync need, and each authority's latest block whatever its round (our own
is what keeps us from signing a second block for a round after a restart).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from soma.storage import (
    U32_BE,
    U64_BE,
    Database,
    FixedBytesCodec,
    StructCodec,
    TableSpec,
    tuple_codec,
)
from soma.types.consensus.block import BlockRef, SignedBlock
from soma.types.consensus.commit import Commit, CommitInfo
from soma.types.digests import BlockDigest

_BLOCK_KEY = tuple_codec(U32_BE, U32_BE, FixedBytesCodec(32, BlockDigest))

BLOCKS = TableSpec("consensus_blocks", _BLOCK_KEY, StructCodec(SignedBlock))
COMMITS = TableSpec("consensus_commits", U64_BE, StructCodec(Commit))
COMMIT_INFO = TableSpec("consensus_commit_info", U64_BE, StructCodec(CommitInfo))
TABLES = (BLOCKS, COMMITS, COMMIT_INFO)

_MAX_U32 = (1 << 32) - 1


def _key(ref: BlockRef) -> tuple[int, int, BlockDigest]:
    return (ref.round, ref.author, ref.digest)


class ConsensusStore:
    """Typed access to the consensus tables of one database (one epoch's consensus)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._blocks = db.table(BLOCKS)
        self._commits = db.table(COMMITS)
        self._commit_info = db.table(COMMIT_INFO)

    @classmethod
    def open_memory(cls) -> ConsensusStore:
        return cls(Database.open_memory(TABLES))

    @classmethod
    def open_rocksdb(cls, path: str | os.PathLike[str]) -> ConsensusStore:
        return cls(Database.open_rocksdb(path, TABLES))

    @property
    def database(self) -> Database:
        return self._db

    def write(
        self,
        blocks: Sequence[SignedBlock],
        commits: Sequence[Commit] = (),
        commit_info: Sequence[tuple[int, CommitInfo]] = (),
        *,
        sync: bool = True,
    ) -> None:
        """Persist all of it atomically; with `sync`, durably (fsync) before returning.

        Without `sync` the batch survives the process being killed (it is in the
        operating system's cache when this returns) but not a power loss."""
        if not (blocks or commits or commit_info):
            return
        batch = self._db.batch()
        for block in blocks:
            batch.put(self._blocks, _key(block.reference()), block)
        for commit in commits:
            batch.put(self._commits, commit.index, commit)
        for index, info in commit_info:
            batch.put(self._commit_info, index, info)
        self._db.write(batch, sync=sync)

    # --- blocks --------------------------------------------------------------------------

    def read_blocks(self, refs: Sequence[BlockRef]) -> list[SignedBlock | None]:
        return self._blocks.multi_get([_key(r) for r in refs])

    def contains_block(self, ref: BlockRef) -> bool:
        return self._blocks.contains(_key(ref))

    def scan_blocks_from(self, round: int) -> Iterator[SignedBlock]:
        """Every block at `round` or above, in (round, author, digest) order."""
        start = (round, 0, BlockDigest.zero())
        for _, block in self._blocks.items(start=start):
            yield block

    def last_block_of(self, author: int) -> SignedBlock | None:
        """The highest-round block of `author` (its last proposal, for our own index)."""
        top = (_MAX_U32, _MAX_U32, BlockDigest(b"\xff" * 32))
        for (_, block_author, _), block in self._blocks.items(start=top, reverse=True):
            if block_author == author:
                return block
        return None

    # --- commits -------------------------------------------------------------------------

    def first_commit_index(self) -> int | None:
        """The lowest commit held (commits below it were pruned)."""
        for index, _ in self._commits.items():
            return index
        return None

    def commit(self, index: int) -> Commit | None:
        return self._commits.get(index)

    def last_commit(self) -> Commit | None:
        last = self._commits.last()
        return None if last is None else last[1]

    def scan_commits(self, first: int, last: int | None = None) -> Iterator[Commit]:
        """Commits with index in [first, last] (to the end if `last` is None)."""
        end = None if last is None else last + 1
        for _, commit in self._commits.items(start=first, end=end):
            yield commit

    def scan_commits_backward(self) -> Iterator[Commit]:
        for _, commit in self._commits.items(reverse=True, start=(1 << 64) - 1):
            yield commit

    def last_commit_info(self) -> tuple[int, CommitInfo] | None:
        return self._commit_info.last()

    def commit_info_before(self, index: int) -> tuple[int, CommitInfo] | None:
        """The latest commit info stored at a commit index below `index`."""
        if index == 0:
            return None
        for entry in self._commit_info.items(start=index - 1, reverse=True):
            return entry
        return None

    # --- pruning ---------------------------------------------------------------------------

    def prune(
        self,
        commits_below: int,
        blocks_below_round: int,
        infos_below: int,
        latest_blocks: Sequence[SignedBlock] | None = None,
    ) -> None:
        """Delete commits with index below `commits_below`, commit info below
        `infos_below`, and blocks of rounds below `blocks_below_round` except each
        authority's latest block (`latest_blocks`, looked up here if not given);
        atomically and durably."""
        latest = self._latest_blocks() if latest_blocks is None else latest_blocks
        batch = self._db.batch()
        if commits_below > 0:
            batch.delete_range(self._commits, 0, commits_below)
        if infos_below > 0:
            batch.delete_range(self._commit_info, 0, infos_below)
        if blocks_below_round > 0:
            zero = BlockDigest.zero()
            batch.delete_range(self._blocks, (0, 0, zero), (blocks_below_round, 0, zero))
            # Applied in order: the kept blocks are written back after the range is gone.
            for block in latest:
                if 0 < block.round < blocks_below_round:
                    batch.put(self._blocks, _key(block.reference()), block)
        self._db.write(batch, sync=True)

    def _latest_blocks(self) -> list[SignedBlock]:
        """Each author's highest-round block (one backward scan of the keys)."""
        found: dict[int, tuple[int, int, BlockDigest]] = {}
        top = (_MAX_U32, _MAX_U32, BlockDigest(b"\xff" * 32))
        for key in self._blocks.keys(start=top, reverse=True):
            found.setdefault(key[1], key)
        blocks = self._blocks.multi_get(list(found.values()))
        return [b for b in blocks if b is not None]

    def close(self) -> None:
        self._db.close()
