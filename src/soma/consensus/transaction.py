"""The queue of transactions waiting to be put in our next block.

Bounded: a full queue refuses new transactions with `TransactionQueueFullError`, which a
caller can see and retry later, instead of memory growing without limit under load.
Transactions are opaque bytes to consensus.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from soma.consensus.errors import ConsensusError


class TransactionQueueFullError(ConsensusError):
    code = "CONSENSUS_QUEUE_FULL"


class TransactionTooLargeError(ConsensusError):
    code = "CONSENSUS_TRANSACTION_TOO_LARGE"


class TransactionQueue:
    def __init__(self, max_pending: int = 100_000, max_transaction_bytes: int = 256 * 1024):
        self._queue: collections.deque[bytes] = collections.deque()
        self._max_pending = max_pending
        self._max_transaction_bytes = max_transaction_bytes

    def submit(self, transaction: bytes) -> None:
        if len(transaction) > self._max_transaction_bytes:
            raise TransactionTooLargeError(
                f"transaction of {len(transaction)} bytes exceeds {self._max_transaction_bytes}"
            )
        if len(self._queue) >= self._max_pending:
            raise TransactionQueueFullError(
                f"{self._max_pending} transactions are already waiting; retry later"
            )
        self._queue.append(transaction)

    def submit_many(self, transactions: Iterable[bytes]) -> None:
        for tx in transactions:
            self.submit(tx)

    def take(self, max_count: int, max_bytes: int) -> list[bytes]:
        """The oldest transactions that fit in one block."""
        taken: list[bytes] = []
        size = 0
        queue = self._queue
        while queue and len(taken) < max_count and size + len(queue[0]) <= max_bytes:
            tx = queue.popleft()
            size += len(tx)
            taken.append(tx)
        return taken

    def __len__(self) -> int:
        return len(self._queue)
