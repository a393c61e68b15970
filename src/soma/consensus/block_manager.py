"""The block manager: the gate between verified blocks and the DAG.

A verified block enters the DAG only once every ancestor is there (or is older than the
garbage-collection round, so it no longer matters). Until then it is *suspended*, and the
references it waits for that nobody has sent are reported as missing, for the
synchronizer to fetch. Accepting a block unsuspends, recursively, every block that was
waiting only for it. Suspended blocks that fall below the GC round are dropped.

Everything returned is sorted, never in set order: the simulator's runs must not depend on
Python's per-process hash seed.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from collections.abc import Iterable

from soma.consensus.block_verifier import BlockVerifier
from soma.consensus.dag_state import DagState
from soma.consensus.errors import BlockRejectedError
from soma.types.consensus.block import BlockRef, SignedBlock

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class _Suspended:
    block: SignedBlock
    missing: set[BlockRef]


@dataclasses.dataclass
class AcceptResult:
    #: Blocks now in the DAG, ancestors before descendants.
    accepted: list[SignedBlock]
    #: References still needed that are neither in the DAG nor suspended, sorted.
    missing: list[BlockRef]
    #: Blocks refused once their ancestors were known (e.g. a timestamp below theirs).
    rejected: list[tuple[SignedBlock, BlockRejectedError]] = dataclasses.field(default_factory=list)


class BlockManager:
    def __init__(self, dag: DagState, verifier: BlockVerifier) -> None:
        self._dag = dag
        self._verifier = verifier
        self._suspended: dict[BlockRef, _Suspended] = {}
        #: Missing reference -> the suspended blocks waiting for it.
        self._waiting: dict[BlockRef, set[BlockRef]] = {}

    def try_accept_blocks(self, blocks: Iterable[SignedBlock]) -> AcceptResult:
        """Blocks already verified (`BlockVerifier.verify`), in any order."""
        result = AcceptResult([], [])
        for block in sorted(blocks, key=lambda b: b.reference().sort_key()):
            self._try_accept(block, result)
        result.missing = self.missing_blocks()
        return result

    def _try_accept(self, block: SignedBlock, result: AcceptResult) -> None:
        ref = block.reference()
        dag = self._dag
        if dag.contains(ref) or ref in self._suspended or block.round <= dag.gc_round:
            return
        missing = {a for a in block.ancestors if a.round > dag.gc_round and not dag.contains(a)}
        if missing:
            self._suspended[ref] = _Suspended(block, missing)
            for a in missing:
                self._waiting.setdefault(a, set()).add(ref)
            return
        self._accept(block, result)

    def _accept(self, block: SignedBlock, result: AcceptResult) -> None:
        """Accept `block` and then every suspended block it completes, breadth first."""
        queue = collections.deque([block])
        while queue:
            current = queue.popleft()
            if not self._check_and_insert(current, result):
                continue
            queue.extend(self._release(current.reference()))

    def _release(self, ref: BlockRef) -> list[SignedBlock]:
        """`ref` is now in the DAG: the suspended blocks that waited only for it."""
        ready: list[SignedBlock] = []
        for dependent in sorted(self._waiting.pop(ref, ())):
            entry = self._suspended.get(dependent)
            if entry is None:
                continue
            entry.missing.discard(ref)
            if not entry.missing:
                del self._suspended[dependent]
                ready.append(entry.block)
        return ready

    def blocks_inserted(self, refs: Iterable[BlockRef]) -> AcceptResult:
        """Blocks were put into the DAG directly (from certified commits): accept the
        suspended blocks they complete."""
        result = AcceptResult([], [])
        for ref in refs:
            for block in self._release(ref):
                self._accept(block, result)
        self._suspended_cleanup(result)
        result.missing = self.missing_blocks()
        return result

    def _suspended_cleanup(self, result: AcceptResult) -> None:
        """Drop suspended blocks that were meanwhile inserted another way."""
        for ref in [r for r in self._suspended if self._dag.contains(r)]:
            entry = self._suspended.pop(ref)
            for a in entry.missing:
                waiters = self._waiting.get(a)
                if waiters is not None:
                    waiters.discard(ref)
                    if not waiters:
                        del self._waiting[a]

    def _check_and_insert(self, block: SignedBlock, result: AcceptResult) -> bool:
        ancestors = [a for a in map(self._dag.get_block, block.ancestors) if a is not None]
        try:
            self._verifier.check_ancestors(block, ancestors)
        except BlockRejectedError as e:
            logger.warning("rejected block %s: %s", block, e)
            result.rejected.append((block, e))
            return False
        self._dag.accept_block(block)
        result.accepted.append(block)
        return True

    def missing_blocks(self) -> list[BlockRef]:
        """References suspended blocks wait for that are not themselves suspended."""
        return sorted(ref for ref in self._waiting if ref not in self._suspended)

    def suspended_count(self) -> int:
        return len(self._suspended)

    def garbage_collect(self) -> AcceptResult:
        """Drop suspended blocks at or below the GC round, and the waits they held;
        return the blocks accepted because what they waited for became too old."""
        result = AcceptResult([], [])
        gc_round = self._dag.gc_round
        stale = [ref for ref, entry in self._suspended.items() if entry.block.round <= gc_round]
        for ref in stale:
            entry = self._suspended.pop(ref)
            for a in entry.missing:
                waiters = self._waiting.get(a)
                if waiters is not None:
                    waiters.discard(ref)
                    if not waiters:
                        del self._waiting[a]
        # Missing ancestors that became too old to matter no longer hold anyone back.
        for a in sorted(r for r in self._waiting if r.round <= gc_round):
            for dependent in sorted(self._waiting.pop(a)):
                waiting = self._suspended.get(dependent)
                if waiting is not None:
                    waiting.missing.discard(a)
                    if not waiting.missing:
                        del self._suspended[dependent]
                        self._accept(waiting.block, result)
        result.missing = self.missing_blocks()
        return result
