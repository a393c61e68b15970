"""TransactionClient: how the rest of the node hands transactions to consensus.

`submit` queues a list of transactions to go into one of our blocks and returns once that
block is proposed, with the block's reference and a future that settles when the block is
committed (with the commit index) or garbage-collected uncommitted (the caller should
resubmit). The queue is bounded: when it is full `submit` raises
`TransactionQueueFullError` at once rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Sequence

from soma.consensus.transaction import TransactionQueue
from soma.types.consensus.block import BlockRef
from soma.types.consensus.commit import CommittedSubDag


class BlockStatus(enum.Enum):
    COMMITTED = "committed"
    GARBAGE_COLLECTED = "garbage_collected"


@dataclasses.dataclass(frozen=True)
class BlockOutcome:
    status: BlockStatus
    #: The commit that included the block (None if garbage-collected).
    commit_index: int | None = None


@dataclasses.dataclass(frozen=True)
class Inclusion:
    """Our block that carries a submission, and its eventual fate."""

    block: BlockRef
    outcome: asyncio.Future[BlockOutcome]


class TransactionClient:
    def __init__(self, queue: TransactionQueue, wake: Callable[[], None]) -> None:
        self._queue = queue
        self._wake = wake
        self._waiting: dict[BlockRef, list[asyncio.Future[BlockOutcome]]] = {}
        #: Submissions not yet in a proposed block (woken with an error at close).
        self._unproposed: set[asyncio.Future[Inclusion]] = set()
        self._closed = False

    async def submit(self, transactions: Sequence[bytes]) -> Inclusion:
        """Queue `transactions` for one block; returns when that block is proposed."""
        if self._closed:
            raise asyncio.CancelledError("consensus is shutting down")
        included: asyncio.Future[Inclusion] = asyncio.get_running_loop().create_future()
        self._queue.submit_batch(transactions, token=included)
        self._unproposed.add(included)
        included.add_done_callback(self._unproposed.discard)
        self._wake()
        return await included

    def pending(self) -> int:
        """Transactions waiting to be put in a block."""
        return len(self._queue)

    # --- called by the authority ---------------------------------------------------------

    def on_included(self, token: object, block: BlockRef) -> None:
        if not isinstance(token, asyncio.Future) or token.done():
            return
        outcome: asyncio.Future[BlockOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(block, []).append(outcome)
        token.set_result(Inclusion(block, outcome))

    def on_committed(self, subdag: CommittedSubDag) -> None:
        if not self._waiting:
            return
        for block in subdag.blocks:
            for outcome in self._waiting.pop(block.reference(), ()):
                if not outcome.done():
                    outcome.set_result(BlockOutcome(BlockStatus.COMMITTED, subdag.commit.index))

    def on_gc_round(self, gc_round: int) -> None:
        """Blocks at or below the GC round not committed by now never will be."""
        for ref in [r for r in self._waiting if r.round <= gc_round]:
            for outcome in self._waiting.pop(ref):
                if not outcome.done():
                    outcome.set_result(BlockOutcome(BlockStatus.GARBAGE_COLLECTED))

    def close(self) -> None:
        """Consensus is stopping: every caller still waiting (for its block to be
        proposed, or for that block's fate) is woken with `CancelledError`."""
        self._closed = True
        for included in list(self._unproposed):
            included.cancel()
        self._unproposed.clear()
        for outcomes in self._waiting.values():
            for outcome in outcomes:
                outcome.cancel()
        self._waiting.clear()
