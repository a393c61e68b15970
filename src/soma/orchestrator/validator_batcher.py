"""Batching a client's calls to one validator.

A busy client (the HTTP gateway, a benchmark) has many transactions in flight. Sent one
call each, the per-call cost of gRPC (on both sides) dominates: it was most of a
validator's CPU per transfer. These batchers collect what callers ask for over a short
linger and send it as one `SubmitTransactions` call or one `StreamEffects` stream, then
hand each caller its own answer.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from soma.authority import service_wire as wire
from soma.authority.service_client import ValidatorCallError, ValidatorClient
from soma.orchestrator.committee_history import CommitteeHistory
from soma.types.base import AuthorityName
from soma.types.committee import Committee
from soma.types.digests import TransactionDigest
from soma.types.effects import TransactionEffects
from soma.types.error import SomaError
from soma.types.signature_batch import BATCH_INTENT, MerkleProof, MerkleTree, batch_leaves
from soma.types.signature_info import AuthoritySignInfo
from soma.types.transaction import SignedTransaction

logger = logging.getLogger(__name__)

#: How long a batcher waits for more requests after the first (seconds).
LINGER_S = 0.02
#: Longest one effects stream stays open; digests still missing are asked for again.
STREAM_TIMEOUT_S = 20.0
#: Timeout of one SubmitTransactions call (a validator may wait INPUT_WAIT_S for inputs).
SUBMIT_TIMEOUT_S = 15.0


class _Batcher(abc.ABC):
    """The part both batchers share: a queue, a runner that wakes on the first entry,
    lingers, and starts a call (a task) per batch, and a clean close."""

    def __init__(self, linger_s: float, max_batch: int) -> None:
        self.linger_s = linger_s
        self.max_batch = max_batch
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._closed = False

    def _kick(self) -> None:
        if self._closed:
            raise ValidatorCallError("the client is closed")
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self.linger_s > 0:
                await asyncio.sleep(self.linger_s)
            self._wake.clear()
            while self._queued():
                task = asyncio.get_running_loop().create_task(self._send_batch())
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    @abc.abstractmethod
    def _queued(self) -> int:
        """Provided by each batcher."""

    @abc.abstractmethod
    def _send_batch(self) -> Coroutine[Any, Any, None]:
        """Provided by each batcher."""

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._calls, *([self._runner] if self._runner else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._fail_all(ValidatorCallError("the client is closed"))

    @abc.abstractmethod
    def _fail_all(self, error: SomaError) -> None:
        """Provided by each batcher."""


class SubmitBatcher(_Batcher):
    """`submit(tx)` for many callers, sent as SubmitTransactions calls."""

    def __init__(
        self, client: ValidatorClient, linger_s: float = LINGER_S, max_batch: int = wire.MAX_BATCH
    ) -> None:
        super().__init__(linger_s, max_batch)
        self.client = client
        self._queue: list[tuple[SignedTransaction, asyncio.Future[wire.SubmitOutcome]]] = []

    def submit(self, tx: SignedTransaction) -> asyncio.Future[wire.SubmitOutcome]:
        """The validator's outcome for `tx`; fails with ValidatorCallError if the call
        does."""
        future: asyncio.Future[wire.SubmitOutcome] = asyncio.get_running_loop().create_future()
        self._kick()
        self._queue.append((tx, future))
        return future

    def _queued(self) -> int:
        return len(self._queue)

    def _send_batch(self) -> Coroutine[Any, Any, None]:
        # Up to max_batch transactions and MAX_BATCH_BYTES (always at least one).
        size = 0
        taken = 0
        for tx, _ in self._queue[: self.max_batch]:
            size += len(tx.to_bytes())
            if taken and size > wire.MAX_BATCH_BYTES:
                break
            taken += 1
        batch = self._queue[:taken]
        del self._queue[:taken]
        return self._call(batch)

    async def _call(
        self, batch: list[tuple[SignedTransaction, asyncio.Future[wire.SubmitOutcome]]]
    ) -> None:
        try:
            outcomes = await self.client.submit_transactions(
                [tx for tx, _ in batch], timeout_s=SUBMIT_TIMEOUT_S
            )
        except SomaError as e:
            error = e if isinstance(e, ValidatorCallError) else ValidatorCallError(str(e))
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as e:  # a bug here must fail the callers, not strand them
            logger.exception("submitting to %s failed", self.client.address)
            failure = ValidatorCallError(f"{self.client.address}: submission failed: {e}")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    def _fail_all(self, error: SomaError) -> None:
        for _, future in self._queue:
            if not future.done():
                future.set_exception(error)
        self._queue.clear()


class StreamedEffects:
    """One validator's effects of one transaction from a verified stream message: the
    BCS bytes, the batch signature, and the Merkle proof under it (made on demand)."""

    __slots__ = ("_index", "_tree", "effects", "signature")

    def __init__(
        self, effects: bytes, signature: AuthoritySignInfo, tree: MerkleTree, index: int
    ) -> None:
        self.effects = effects
        self.signature = signature
        self._tree = tree
        self._index = index

    def proof(self) -> MerkleProof:
        return self._tree.proof(self._index)


class UnknownEpochError(ValidatorCallError):
    """Effects signed in an epoch whose committee the client has not learnt yet (the
    validator is ahead of it): not the validator's fault; watch again once it has."""


class EffectsWatcher(_Batcher):
    """`watch(digest)` for many callers, served by StreamEffects streams.

    Each stream message's batch signature is verified once, here, against the
    committee: it must be this validator's, over the root of the message's effects.
    The future resolves with the `StreamedEffects`, with None if the stream ended
    before they were there (the caller may watch again), or fails with
    ValidatorCallError if the stream broke or a message did not verify.
    """

    def __init__(
        self,
        client: ValidatorClient,
        committee: Committee | CommitteeHistory,
        name: AuthorityName,
        linger_s: float = LINGER_S,
        max_batch: int = wire.MAX_BATCH,
        stream_timeout_s: float = STREAM_TIMEOUT_S,
    ) -> None:
        super().__init__(linger_s, max_batch)
        self.client = client
        #: Each message is checked against the committee of its signature's epoch.
        self.committees = (
            committee if isinstance(committee, CommitteeHistory) else CommitteeHistory(committee)
        )
        self.name = name
        self.stream_timeout_s = stream_timeout_s
        self._queue: list[tuple[TransactionDigest, asyncio.Future[StreamedEffects | None]]] = []

    def watch(self, digest: TransactionDigest) -> asyncio.Future[StreamedEffects | None]:
        future: asyncio.Future[StreamedEffects | None] = asyncio.get_running_loop().create_future()
        self._kick()
        self._queue.append((digest, future))
        return future

    def _queued(self) -> int:
        return len(self._queue)

    def _send_batch(self) -> Coroutine[Any, Any, None]:
        batch = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        return self._stream(batch)

    async def _stream(
        self, batch: list[tuple[TransactionDigest, asyncio.Future[StreamedEffects | None]]]
    ) -> None:
        waiting: dict[TransactionDigest, list[asyncio.Future[StreamedEffects | None]]] = {}
        for digest, future in batch:
            waiting.setdefault(digest, []).append(future)
        error: SomaError | None = None
        stream = self.client.stream_effects(list(waiting), self.stream_timeout_s)
        try:
            async for message in stream:
                # Only what was asked, each once, before any hashing: a validator must
                # not make us hash a flood of items to find its signature bad.
                digests = [item.digest for item in message.items]
                if len(set(digests)) != len(digests) or any(d not in waiting for d in digests):
                    raise ValidatorCallError(
                        f"{self.client.address}: effects that were not asked for, or repeated"
                    )
                for item, streamed in zip(message.items, self._verified(message), strict=True):
                    for future in waiting.pop(item.digest, ()):
                        if not future.done():
                            future.set_result(streamed)
                if not waiting:
                    break
        except SomaError as e:
            error = e if isinstance(e, ValidatorCallError) else ValidatorCallError(str(e))
        except asyncio.CancelledError:
            for futures in waiting.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as e:  # a bug here must fail the callers, not strand them
            logger.exception("effects stream from %s failed", self.client.address)
            error = ValidatorCallError(f"{self.client.address}: effects stream failed: {e}")
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
        for futures in waiting.values():
            for future in futures:
                if future.done():
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(None)

    def _fail_all(self, error: SomaError) -> None:
        for _, future in self._queue:
            if not future.done():
                future.set_exception(error)
        self._queue.clear()

    def _verified(self, message: wire.EffectsBatch) -> list[StreamedEffects]:
        signature = message.signature
        if signature.authority != self.name:
            raise ValidatorCallError(f"{self.client.address}: effects signed by another validator")
        if not message.items:
            return []
        tree = MerkleTree(
            batch_leaves(TransactionEffects.INTENT, [i.effects for i in message.items])
        )
        committee = self.committees.of(signature.epoch)
        if committee is None:
            raise UnknownEpochError(
                f"{self.client.address}: effects signed in epoch {signature.epoch}, "
                "whose committee this client does not know yet"
            )
        try:
            signature.verify(committee, BATCH_INTENT, tree.root)
        except SomaError as e:
            raise ValidatorCallError(f"{self.client.address}: bad batch signature: {e}") from None
        return [
            StreamedEffects(item.effects, signature, tree, i)
            for i, item in enumerate(message.items)
        ]
