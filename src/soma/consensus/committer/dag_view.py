"""What the commit rule reads of the DAG."""

from __future__ import annotations

from typing import Protocol

from soma.types.consensus.block import BlockRef, SignedBlock, Slot


class DagView(Protocol):
    def get_block(self, ref: BlockRef) -> SignedBlock | None: ...

    def blocks_at_slot(self, slot: Slot) -> list[SignedBlock]: ...

    def blocks_at_round(self, round: int) -> list[SignedBlock]: ...

    def ancestors_at_round(self, block: SignedBlock, round: int) -> list[SignedBlock]: ...

    @property
    def highest_accepted_round(self) -> int: ...
