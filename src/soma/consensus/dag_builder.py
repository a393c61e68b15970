"""Build DAGs of (unsigned) blocks directly, for tests, the DAG text format and `soma dag
decide`.

These blocks never pass the block verifier (they carry no real signature and may break
its rules on purpose); they exist to put a committer or linearizer in front of an exact
DAG shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from soma.types.consensus.block import (
    GENESIS_SIGNATURE,
    Block,
    BlockRef,
    SignedBlock,
    Slot,
    genesis_blocks,
)


class DagBuilder:
    """Blocks layer by layer, in creation order (every block after its ancestors)."""

    def __init__(self, committee_size: int, epoch: int = 0) -> None:
        if committee_size < 1:
            raise ValueError("a DAG needs at least one authority")
        self.committee_size = committee_size
        self.epoch = epoch
        self.genesis = genesis_blocks(epoch, committee_size)
        self.blocks: dict[BlockRef, SignedBlock] = {b.reference(): b for b in self.genesis}
        self._by_slot: dict[Slot, list[SignedBlock]] = {b.slot(): [b] for b in self.genesis}
        #: The blocks of the last layer built: what `*` links to.
        self.last_ancestors: list[BlockRef] = [b.reference() for b in self.genesis]

    def add_block(
        self,
        round: int,
        author: int,
        ancestors: Iterable[BlockRef],
        *,
        timestamp_ms: int | None = None,
        transactions: Sequence[bytes] = (),
        variant: int = 0,
    ) -> SignedBlock:
        """A block of `author` at `round` linking `ancestors` (the author's own most
        recent ancestor is put first, the rest ordered by round descending, then author).
        `variant` makes a different block for the same slot (an equivocation)."""
        if not 0 <= author < self.committee_size:
            raise ValueError(f"authority {author} outside a committee of {self.committee_size}")
        if round < 1:
            raise ValueError("round 0 holds only the genesis blocks")
        refs = sorted(set(ancestors), key=lambda r: (-r.round, r.author, r.digest))
        own = [r for r in refs if r.author == author]
        if own:
            refs.remove(own[0])
            refs.insert(0, own[0])
        if timestamp_ms is None:
            timestamp_ms = round * 1000 + author
        txs = tuple(transactions)
        if variant:
            txs = (*txs, f"equivocation-{variant}".encode())
        block = SignedBlock(
            Block(self.epoch, round, author, timestamp_ms, tuple(refs), txs, ()),
            GENESIS_SIGNATURE,
        )
        ref = block.reference()
        if ref not in self.blocks:
            self.blocks[ref] = block
            self._by_slot.setdefault(block.slot(), []).append(block)
        return block

    def layer(
        self,
        round: int,
        authors: Iterable[int] | None = None,
        ancestors: Sequence[BlockRef] | None = None,
    ) -> list[SignedBlock]:
        """One block per author (default: all) at `round`, each linking `ancestors`
        (default: the previous layer); the new blocks become the last layer."""
        links = self.last_ancestors if ancestors is None else list(ancestors)
        who = range(self.committee_size) if authors is None else authors
        made = [self.add_block(round, a, links) for a in who]
        self.last_ancestors = [b.reference() for b in made]
        return made

    def layers(self, first: int, last: int) -> list[SignedBlock]:
        """Fully connected layers for rounds first..last inclusive."""
        made: list[SignedBlock] = []
        for r in range(first, last + 1):
            made += self.layer(r)
        return made

    def blocks_at_slot(self, slot: Slot) -> list[SignedBlock]:
        return list(self._by_slot.get(slot, ()))

    def all_blocks(self) -> list[SignedBlock]:
        """Every block except genesis, in creation order."""
        return [b for b in self.blocks.values() if b.round > 0]

    @property
    def highest_round(self) -> int:
        return max(ref.round for ref in self.blocks)
