"""The queue of transactions waiting to be put in our next block.

A submission is a list of transactions that goes into one block whole (so the submitter
learns one block reference for all of them), with an opaque token the caller uses to
match the acknowledgement: when the block carrying a submission is proposed, Core reports
(token, block reference) as included; whether that block is later committed or
garbage-collected, the caller learns from the commits.

Bounded: a full queue refuses new transactions with `TransactionQueueFullError`, which a
caller can see and retry later, instead of memory growing without limit under load.
Transactions are opaque bytes to consensus.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence

from soma.consensus.errors import ConsensusError


class TransactionQueueFullError(ConsensusError):
    code = "CONSENSUS_QUEUE_FULL"


class TransactionTooLargeError(ConsensusError):
    code = "CONSENSUS_TRANSACTION_TOO_LARGE"


@dataclasses.dataclass(frozen=True)
class Submission:
    transactions: tuple[bytes, ...]
    size: int
    token: object | None


@dataclasses.dataclass
class TakenTransactions:
    transactions: list[bytes]
    #: Tokens of the submissions taken (those given one).
    tokens: list[object]


class TransactionQueue:
    def __init__(
        self,
        max_pending: int = 100_000,
        max_transaction_bytes: int = 256 * 1024,
        max_submission_transactions: int = 10_000,
        max_submission_bytes: int = 2 * 1024 * 1024,
    ) -> None:
        self._queue: collections.deque[Submission] = collections.deque()
        self._pending = 0
        self._max_pending = max_pending
        self._max_transaction_bytes = max_transaction_bytes
        self._max_submission_transactions = max_submission_transactions
        self._max_submission_bytes = max_submission_bytes

    def submit(self, transaction: bytes, token: object | None = None) -> None:
        self.submit_batch([transaction], token)

    def submit_many(self, transactions: Iterable[bytes]) -> None:
        """Each transaction a submission of its own."""
        for tx in transactions:
            self.submit(tx)

    def submit_batch(self, transactions: Sequence[bytes], token: object | None = None) -> None:
        """Queue `transactions` to go into one block together."""
        size = 0
        for tx in transactions:
            if len(tx) > self._max_transaction_bytes:
                raise TransactionTooLargeError(
                    f"transaction of {len(tx)} bytes exceeds {self._max_transaction_bytes}"
                )
            size += len(tx)
        if len(transactions) > self._max_submission_transactions:
            raise TransactionTooLargeError(
                f"{len(transactions)} transactions in one submission exceed the block limit of"
                f" {self._max_submission_transactions}"
            )
        if size > self._max_submission_bytes:
            raise TransactionTooLargeError(
                f"a submission of {size} bytes exceeds the block limit of"
                f" {self._max_submission_bytes}"
            )
        if self._pending + len(transactions) > self._max_pending:
            raise TransactionQueueFullError(
                f"{self._pending} transactions are already waiting; retry later"
            )
        self._queue.append(Submission(tuple(transactions), size, token))
        self._pending += len(transactions)

    def take(self, max_count: int, max_bytes: int) -> TakenTransactions:
        """The oldest whole submissions that fit in one block."""
        taken = TakenTransactions([], [])
        size = 0
        queue = self._queue
        while queue:
            head = queue[0]
            if len(taken.transactions) + len(head.transactions) > max_count:
                break
            if size + head.size > max_bytes:
                break
            queue.popleft()
            size += head.size
            taken.transactions += head.transactions
            if head.token is not None:
                taken.tokens.append(head.token)
        self._pending -= len(taken.transactions)
        return taken

    def __len__(self) -> int:
        """Transactions waiting."""
        return self._pending
