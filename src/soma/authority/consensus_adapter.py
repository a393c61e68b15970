"""ConsensusAdapter: offers validated transactions to consensus, once each, until they
are ordered.

- Deduplicated: a digest already waiting (submitted twice, or to us by several clients)
  is not offered again.
- Batched: transactions arriving together go into one submission (one block), which is
  what makes consensus cheap per transaction.
- Retried: if the block carrying a batch is garbage-collected uncommitted, the
  transactions not yet ordered are offered again; if consensus' own queue is full, the
  batch waits and tries again.
- Back-pressured: at most `max_pending` transactions wait here; beyond that `submit`
  raises `ConsensusOverloadedError` and the client retries later.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from soma.authority.errors import (
    AuthorityStoppedError,
    ConsensusOverloadedError,
    TransactionTooLargeError,
)
from soma.consensus.parameters import ConsensusParameters
from soma.consensus.transaction import TransactionQueueFullError
from soma.consensus.transaction_client import BlockStatus, Inclusion
from soma.types.consensus.transaction import UserTransaction
from soma.types.digests import TransactionDigest
from soma.types.transaction import SignedTransaction

logger = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 50_000
#: Most transactions and bytes offered in one submission (one block holds it whole).
MAX_BATCH_TRANSACTIONS = 2_000
MAX_BATCH_BYTES = 1024 * 1024
QUEUE_FULL_RETRY_S = 0.05
#: Consensus' own limit per transaction (ConsensusParameters.max_transaction_bytes).
DEFAULT_MAX_TRANSACTION_BYTES = ConsensusParameters().max_transaction_bytes


class ConsensusSubmitter(Protocol):
    """What the adapter needs of consensus (ConsensusAuthority's TransactionClient)."""

    async def submit(self, transactions: Sequence[bytes]) -> Inclusion: ...


class ConsensusAdapter:
    def __init__(
        self,
        submitter: ConsensusSubmitter,
        is_ordered: Callable[[TransactionDigest], bool],
        max_pending: int = DEFAULT_MAX_PENDING,
        max_transaction_bytes: int = DEFAULT_MAX_TRANSACTION_BYTES,
    ) -> None:
        self.max_transaction_bytes = max_transaction_bytes
        self._submitter = submitter
        self._is_ordered = is_ordered
        self.max_pending = max_pending
        self._pending: dict[TransactionDigest, bytes] = {}
        self._unsent: collections.deque[TransactionDigest] = collections.deque()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._closed = False
        self.resubmitted = 0

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="consensus-adapter")

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, transaction: SignedTransaction) -> bytes | None:
        """Offer `transaction` (already validated) to consensus; returns at once, with
        the bytes that go into a block (None if it was waiting already)."""
        if self._closed:
            raise AuthorityStoppedError("the authority is shutting down")
        digest = transaction.digest()
        if digest in self._pending:
            return None
        raw = UserTransaction(transaction).to_bytes()
        if len(raw) > self.max_transaction_bytes:
            raise TransactionTooLargeError(
                f"the transaction is {len(raw)} bytes; consensus takes at most "
                f"{self.max_transaction_bytes}"
            )
        if len(self._pending) >= self.max_pending:
            raise ConsensusOverloadedError(
                f"{len(self._pending)} transactions are waiting for consensus; retry later"
            )
        self._pending[digest] = raw
        self._unsent.append(digest)
        self._wake.set()
        return raw

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._unsent:
                batch = self._take_batch()
                if batch:
                    task = asyncio.get_running_loop().create_task(self._offer(batch))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    def _take_batch(self) -> list[TransactionDigest]:
        batch: list[TransactionDigest] = []
        size = 0
        unsent = self._unsent
        while unsent and len(batch) < MAX_BATCH_TRANSACTIONS:
            raw = self._pending.get(unsent[0])
            if raw is None:  # forgotten meanwhile
                unsent.popleft()
                continue
            if batch and size + len(raw) > MAX_BATCH_BYTES:
                break
            batch.append(unsent.popleft())
            size += len(raw)
        return batch

    async def _offer(self, batch: list[TransactionDigest]) -> None:
        offered = list(batch)
        try:
            await self._offer_until_committed(batch)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Whatever went wrong, these transactions must not stay pending for ever
            # (counted against the bound, and deduplicated away if submitted again).
            logger.exception(
                "offering %d transactions to consensus failed: %s",
                len(offered),
                _named(offered),
                extra={"tx": [str(d) for d in offered]},
            )
        finally:
            for digest in offered:
                self._pending.pop(digest, None)

    async def _offer_until_committed(self, batch: list[TransactionDigest]) -> None:
        while True:
            payload = [self._pending[d] for d in batch if d in self._pending]
            if not payload:
                return
            try:
                inclusion = await self._submitter.submit(payload)
            except TransactionQueueFullError:
                await asyncio.sleep(QUEUE_FULL_RETRY_S)
                continue
            outcome = await inclusion.outcome
            if outcome.status is BlockStatus.COMMITTED:
                return
            # Garbage-collected: offer again whatever was not ordered some other way
            # (another validator may have carried the same transaction).
            batch[:] = [d for d in batch if d in self._pending and not self._is_ordered(d)]
            self.resubmitted += len(batch)
            if batch:
                logger.debug(
                    "block garbage-collected; offering %d transactions again: %s",
                    len(batch),
                    _named(batch),
                )

    def forget(self, digest: TransactionDigest) -> None:
        """Ordered (possibly through another validator's block): stop tracking it."""
        self._pending.pop(digest, None)

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._tasks, *([self._runner] if self._runner else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def _named(digests: list[TransactionDigest], shown: int = 3) -> str:
    """The first few digests of a batch, for a log line (`d1, d2, d3 and 7 more`)."""
    text = ", ".join(str(d) for d in digests[:shown])
    return text if len(digests) <= shown else f"{text} and {len(digests) - shown} more"
