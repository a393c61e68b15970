"""TransactionPreparer: decodes and checks the transactions of peer blocks while
consensus is still ordering them.

A block reaches this validator two or three rounds before the commit that orders it.
Decoding its transactions and checking their signatures is most of what handling a
commit costs, and it sat on the path from commit to execution, where every transaction
of the commit waited for it. The preparer does that work as blocks arrive, in slices on
its own task, and keeps each verified transaction under its raw bytes; the consensus
handler takes it from there and only decodes and checks what was not prepared in time.

What it keeps is a cache, never a decision: a transaction that fails here is simply not
kept, and the handler checks it again at commit time and drops it there, the same on
every honest validator. Both the work queue and the cache are bounded, so a flood of
blocks costs memory only up to the bounds.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence

from soma.types.consensus.block import SignedBlock
from soma.types.consensus.transaction import ConsensusTransaction, UserTransaction
from soma.types.error import SomaError
from soma.types.transaction import SignedTransaction

logger = logging.getLogger(__name__)

#: Raw transactions waiting to be prepared, and prepared ones waiting for their commit,
#: by count and by bytes (the oldest go first beyond either bound).
MAX_QUEUED = 100_000
MAX_PREPARED = 200_000
MAX_QUEUED_BYTES = 64 * 1024 * 1024
MAX_PREPARED_BYTES = 128 * 1024 * 1024
#: Transactions prepared between yields to the event loop.
PREPARE_SLICE = 64


class TransactionPreparer:
    def __init__(
        self,
        verify: Callable[[SignedTransaction], bool],
        max_queued: int = MAX_QUEUED,
        max_prepared: int = MAX_PREPARED,
    ) -> None:
        self._verify = verify
        self.max_queued = max_queued
        self.max_prepared = max_prepared
        self.max_queued_bytes = MAX_QUEUED_BYTES
        self.max_prepared_bytes = MAX_PREPARED_BYTES
        self._queued_bytes = 0
        self._prepared_bytes = 0
        #: Raw bytes to prepare, oldest first (an ordered set: the handler removes
        #: what it reaches first).
        self._queued: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self._prepared: collections.OrderedDict[bytes, SignedTransaction] = (
            collections.OrderedDict()
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.prepared_count = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tx-preparer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None

    def __len__(self) -> int:
        return len(self._prepared)

    # --- input -------------------------------------------------------------------------

    def add_blocks(self, blocks: Sequence[SignedBlock]) -> None:
        """The consensus block listener: queue every transaction of these blocks."""
        queued = self._queued
        for block in blocks:
            for raw in block.transactions:
                if raw not in self._prepared and raw not in queued:
                    queued[raw] = None
                    self._queued_bytes += len(raw)
        while queued and (
            len(queued) > self.max_queued or self._queued_bytes > self.max_queued_bytes
        ):
            dropped, _ = queued.popitem(last=False)
            self._queued_bytes -= len(dropped)
        if queued:
            self._wake.set()

    def add_verified(self, raw: bytes, tx: SignedTransaction) -> None:
        """A transaction this validator checked itself (a submission), under the bytes
        it offers to consensus."""
        self._keep(raw, tx)

    # --- output ------------------------------------------------------------------------

    def take(self, raw: bytes) -> SignedTransaction | None:
        """The verified transaction of these bytes if prepared (removed: each is taken
        once, at its commit), else None, and it is no longer queued."""
        tx = self._prepared.pop(raw, None)
        if tx is not None:
            self._prepared_bytes -= len(raw)
        elif raw in self._queued:
            del self._queued[raw]
            self._queued_bytes -= len(raw)
        return tx

    # --- work --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            queued = self._queued
            while queued:
                for _ in range(min(PREPARE_SLICE, len(queued))):
                    raw, _ = queued.popitem(last=False)
                    self._queued_bytes -= len(raw)
                    self._prepare(raw)
                await asyncio.sleep(0)

    def _prepare(self, raw: bytes) -> None:
        try:
            entry = ConsensusTransaction.from_bytes(raw)
        except SomaError:
            return  # the handler drops it (and says so) at commit time
        if not isinstance(entry, UserTransaction):
            return
        if self._verify(entry.transaction):
            self._keep(raw, entry.transaction)

    def _keep(self, raw: bytes, tx: SignedTransaction) -> None:
        prepared = self._prepared
        if raw in prepared:
            return
        prepared[raw] = tx
        self._prepared_bytes += len(raw)
        self.prepared_count += 1
        while prepared and (
            len(prepared) > self.max_prepared or self._prepared_bytes > self.max_prepared_bytes
        ):
            dropped, _ = prepared.popitem(last=False)
            self._prepared_bytes -= len(dropped)
