"""A validator's signatures over its commit summaries, offered to consensus.

Each summary the validator builds is signed with its authority key and put in its next
block as a `CommitSummarySignature`; consensus orders the signatures of all validators,
and the `SummaryCertifier` of each forms the certificates from them. Signatures queued
together go in one submission. A block that is garbage-collected uncommitted is offered
again, unless the summaries it signed were certified meanwhile (through the others'
signatures), since then this signature is no longer needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from soma.authority.consensus_adapter import QUEUE_FULL_RETRY_S, ConsensusSubmitter
from soma.consensus.transaction import TransactionQueueFullError
from soma.consensus.transaction_client import BlockStatus
from soma.types.commit_summary import CommitSummary, SignedCommitSummary
from soma.types.consensus.transaction import CommitSummarySignature
from soma.types.crypto import AuthorityKeyPair

logger = logging.getLogger(__name__)

#: Signatures offered in one submission at most.
MAX_SIGNATURES_PER_SUBMISSION = 64


class SummarySigner:
    def __init__(
        self,
        key: AuthorityKeyPair,
        submitter: ConsensusSubmitter,
        is_certified: Callable[[int], bool],
    ) -> None:
        self.key = key
        self._submitter = submitter
        self._is_certified = is_certified
        self._queue: asyncio.Queue[CommitSummary] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self.signed = 0

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="summary-signer")

    def sign(self, summary: CommitSummary) -> None:
        """Sign `summary` and offer the signature to consensus (returns at once)."""
        self._queue.put_nowait(summary)

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.wait([self._runner])
            self._runner = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_SIGNATURES_PER_SUBMISSION:
                batch.append(self._queue.get_nowait())
            try:
                await self._offer(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A signature is an optimisation of everyone's certificates: losing one
                # costs nothing while 2f+1 others sign. Never stop signing the next.
                logger.exception(
                    "offering %d summary signatures (commits %d to %d) failed",
                    len(batch),
                    min(s.index for s in batch),
                    max(s.index for s in batch),
                )

    async def _offer(self, summaries: list[CommitSummary]) -> None:
        entries = {
            s.index: CommitSummarySignature(
                SignedCommitSummary.sign(s, self.key, s.epoch)
            ).to_bytes()
            for s in summaries
        }
        self.signed += len(entries)
        while True:
            wanted = [raw for index, raw in entries.items() if not self._is_certified(index)]
            if not wanted:
                return
            try:
                inclusion = await self._submitter.submit(wanted)
            except TransactionQueueFullError:
                await asyncio.sleep(QUEUE_FULL_RETRY_S)
                continue
            outcome = await inclusion.outcome
            if outcome.status is BlockStatus.COMMITTED:
                return
