"""ConsensusHandler: turns each committed sub-DAG into ordered transactions for execution.

For commit `n` (handed over exactly once, in order, by the CommitObserver; anything at
or below the epoch store's watermark was already handled and is ignored, so replays after
a restart are harmless):

1. decode each block's transactions; bytes that are not a ConsensusTransaction, and user
   transactions that are not well formed or not signed by their sender, are dropped (a
   Byzantine validator can put anything in its block; every honest validator drops the
   same ones);
2. drop transactions already ordered in this epoch or executed in an earlier one, and
   repeats within the commit;
3. put a ConsensusCommitPrologue (commit index and timestamp) first;
4. assign shared-object versions in that order: a transaction gets each shared object's
   current next version, and a mutable use moves it on to the transaction's Lamport
   version — the same on every validator, because it depends only on the order and the
   declared inputs;
5. count the end-of-publish messages of the commit (`soma.authority.epoch_end`): the
   commit that closes the epoch is marked, and in the commit where they reach 2f+1
   stake, the epoch's last, the epoch change (`ChangeEpoch`) is ordered after the
   commit's transactions;
6. record all of it in the epoch store in one synced batch, then hand the transactions
   to execution, and the summary signatures the commit carried to the certifier.

Commits after the epoch's last carry only summary signatures (consensus runs on until
the epoch's summaries are certified): their transactions are not ordered in this epoch.

A commit fetched by state sync (`handle_certified`) skips steps 1 to 3 and 5: its
transactions come as the committee ordered them, checked against a certified summary,
and one ending with the epoch change is the epoch's last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from soma.authority.epoch_end import CommitVerdict, EpochEnd
from soma.authority.epoch_store import AuthorityPerEpochStore, PendingTransaction, SharedVersion
from soma.authority.execution.executor import lamport_version
from soma.types.base import ObjectID
from soma.types.commit_summary import SignedCommitSummary
from soma.types.consensus.commit import CommittedSubDag
from soma.types.consensus.transaction import (
    CommitSummarySignature,
    ConsensusTransaction,
    EndOfPublish,
    UserTransaction,
)
from soma.types.digests import TransactionDigest
from soma.types.error import SomaError
from soma.types.genesis import SYSTEM_ADDRESS
from soma.types.object import Object
from soma.types.transaction import (
    ChangeEpoch,
    ConsensusCommitPrologue,
    SharedInput,
    SignedTransaction,
    TransactionData,
)

logger = logging.getLogger(__name__)


def change_epoch(epoch_store: AuthorityPerEpochStore, timestamp_ms: int) -> SignedTransaction:
    """The epoch change ordered after the epoch's last commit: it depends only on the
    epoch and the commit's timestamp (the next epoch's start), so every node builds the
    same transaction."""
    kind = ChangeEpoch(
        epoch=epoch_store.epoch + 1,
        protocol_version=epoch_store.system_state.protocol_version,
        epoch_start_timestamp_ms=timestamp_ms,
    )
    return SignedTransaction(TransactionData(kind, SYSTEM_ADDRESS, None, 0, None), ())


def epoch_end_of(epoch_store: AuthorityPerEpochStore) -> EpochEnd:
    """The epoch's end as its store recorded it so far."""
    system_state = epoch_store.system_state
    return EpochEnd(
        epoch_store.committee,
        system_state.epoch_start_timestamp_ms + system_state.parameters.epoch_duration_ms,
        epoch_store.closing_commit(),
        epoch_store.last_commit(),
        epoch_store.end_of_publish(),
    )


def commit_prologue(epoch: int, subdag: CommittedSubDag) -> SignedTransaction:
    kind = ConsensusCommitPrologue(
        epoch=epoch,
        round=subdag.leader.round,
        commit_index=subdag.commit.index,
        commit_timestamp_ms=subdag.timestamp_ms,
        consensus_commit_digest=subdag.commit.digest(),
    )
    data = TransactionData(kind, SYSTEM_ADDRESS, None, 0, None)
    return SignedTransaction(data, ())


class ConsensusHandler:
    def __init__(
        self,
        epoch_store: AuthorityPerEpochStore,
        executed_many: Callable[[Sequence[TransactionDigest]], list[bool]],
        live_object: Callable[[ObjectID], Object | None],
        verify: Callable[[SignedTransaction], bool],
        sink: Callable[[list[PendingTransaction]], None],
        prepared: Callable[[bytes], SignedTransaction | None] = lambda raw: None,
        signature_sink: Callable[[list[SignedCommitSummary]], None] = lambda signed: None,
    ) -> None:
        """`prepared(raw)` gives the transaction of block bytes `raw` if it was decoded
        and verified already (`TransactionPreparer.take`), else None. `signature_sink`
        takes the summary signatures each commit ordered, once they are recorded."""
        self.epoch_store = epoch_store
        self.epoch_end = epoch_end_of(epoch_store)
        self._executed_many = executed_many
        self._live_object = live_object
        self._verify = verify
        self._sink = sink
        self._prepared = prepared
        self._signature_sink = signature_sink
        self.dropped_invalid = 0
        self.dropped_duplicates = 0

    def handle(self, subdag: CommittedSubDag) -> list[PendingTransaction]:
        index = subdag.commit.index
        if not self._is_next(index):
            return []
        candidates, signatures, published = self._decode(subdag)
        if self.epoch_end.ended:
            self.epoch_store.record_after_last(index, signatures)
            if signatures:
                self._signature_sink(signatures)
            return []
        ordered = [commit_prologue(self.epoch_store.epoch, subdag), *self._fresh(candidates)]
        verdict = self.epoch_end.observe(index, subdag.timestamp_ms, published)
        if verdict.closing:
            logger.info("commit %d closes epoch %d", index, self.epoch_store.epoch)
        if verdict.last:
            ordered.append(change_epoch(self.epoch_store, subdag.timestamp_ms))
            logger.info(
                "commit %d is the last of epoch %d (end of publish from %d authorities)",
                index,
                self.epoch_store.epoch,
                len(self.epoch_end.published),
            )
        return self._record(index, subdag.timestamp_ms, ordered, signatures, verdict=verdict)

    def handle_certified(
        self, index: int, transactions: Sequence[SignedTransaction]
    ) -> list[PendingTransaction]:
        """Commit `index` as state sync fetched it for a certified summary: its
        transactions exactly as the committee ordered them (prologue first; the caller
        checked them against the summary's transactions digest), so nothing is dropped
        or added here. Shared versions are assigned as for a commit from consensus."""
        if not self._is_next(index):
            return []
        prologue = transactions[0].data.kind if transactions else None
        if not isinstance(prologue, ConsensusCommitPrologue) or prologue.commit_index != index:
            raise SomaError(f"synced commit {index} does not start with its commit prologue")
        if self.epoch_end.ended:
            raise SomaError(
                f"synced commit {index} after the last commit of epoch {self.epoch_store.epoch}"
            )
        last = isinstance(transactions[-1].data.kind, ChangeEpoch)
        if last:
            self.epoch_end.last_commit = index
        verdict = CommitVerdict(closing=False, last=last, end_of_publish=())
        return self._record(
            index, prologue.commit_timestamp_ms, transactions, [], verdict=verdict, sync=False
        )

    def _is_next(self, index: int) -> bool:
        """False for a commit handled already (a replay); an error for one out of order."""
        watermark = self.epoch_store.last_consensus_commit()
        if index <= watermark:
            return False
        if index != watermark + 1:
            raise SomaError(
                f"commit {index} handed over after commit {watermark}: commits are missing"
            )
        return True

    def _record(
        self,
        index: int,
        timestamp_ms: int,
        ordered: Sequence[SignedTransaction],
        signatures: list[SignedCommitSummary],
        *,
        verdict: CommitVerdict,
        sync: bool = True,
    ) -> list[PendingTransaction]:
        pending, next_versions = self._assign_shared_versions(index, ordered)
        self.epoch_store.record_commit(
            index,
            timestamp_ms,
            pending,
            next_versions,
            signatures,
            end_of_publish=verdict.end_of_publish,
            closing=verdict.closing,
            last=verdict.last,
            sync=sync,
        )
        self._sink(pending)
        if signatures:
            self._signature_sink(signatures)
        return pending

    def _decode(
        self, subdag: CommittedSubDag
    ) -> tuple[list[SignedTransaction], list[SignedCommitSummary], list[int]]:
        """The commit's user transactions (valid, first copy of each), its summary
        signatures (checked by the certifier) and the authors of its end-of-publish
        messages, in block order."""
        out: list[SignedTransaction] = []
        signatures: list[SignedCommitSummary] = []
        published: list[int] = []
        seen: set[TransactionDigest] = set()
        for block in subdag.blocks:
            for raw in block.transactions:
                prepared = self._prepared(raw)
                if prepared is not None:  # decoded and verified ahead of the commit
                    digest = prepared.digest()
                    if digest in seen:
                        self.dropped_duplicates += 1
                    else:
                        seen.add(digest)
                        out.append(prepared)
                    continue
                try:
                    entry = ConsensusTransaction.from_bytes(raw)
                except SomaError as e:
                    self.dropped_invalid += 1
                    logger.warning(
                        "commit %d: undecodable transaction in block %s: %s",
                        subdag.commit.index,
                        block.reference(),
                        e,
                    )
                    continue
                if isinstance(entry, CommitSummarySignature):
                    signatures.append(entry.signed)
                    continue
                if isinstance(entry, EndOfPublish):
                    published.append(block.author)
                    continue
                if not isinstance(entry, UserTransaction):
                    continue
                tx = entry.transaction
                digest = tx.digest()
                if digest in seen:
                    self.dropped_duplicates += 1
                    continue
                # Only a verified copy claims the digest: a badly signed copy placed
                # before the real one must not make every validator drop the real one.
                if not self._verify(tx):
                    self.dropped_invalid += 1
                    logger.warning(
                        "commit %d: dropped invalid transaction %s from block %s",
                        subdag.commit.index,
                        digest,
                        block.reference(),
                    )
                    continue
                seen.add(digest)
                out.append(tx)
        return out, signatures, published

    def _fresh(self, candidates: list[SignedTransaction]) -> list[SignedTransaction]:
        if not candidates:
            return []
        digests = [tx.digest() for tx in candidates]
        processed = self.epoch_store.processed_many(digests)
        executed = self._executed_many(digests)
        out = []
        for tx, done, ran in zip(candidates, processed, executed, strict=True):
            if done or ran:
                self.dropped_duplicates += 1
                continue
            out.append(tx)
        return out

    def _assign_shared_versions(
        self, index: int, ordered: Sequence[SignedTransaction]
    ) -> tuple[list[PendingTransaction], dict[ObjectID, int]]:
        next_versions: dict[ObjectID, int] = {}
        pending = []
        for position, tx in enumerate(ordered):
            data = tx.data
            assigned: dict[ObjectID, int] = {}
            mutable: list[ObjectID] = []
            # Every declared shared input, the epoch change's system state too.
            for entry in data.input_objects():
                if not isinstance(entry, SharedInput):
                    continue
                object_id = entry.object_id
                assigned[object_id] = self._current_version(object_id, next_versions)
                if entry.mutable:
                    mutable.append(object_id)
            if mutable:
                lamport = lamport_version(data, assigned)
                for object_id in mutable:
                    next_versions[object_id] = lamport
            shared = tuple(SharedVersion(k, assigned[k]) for k in sorted(assigned))
            pending.append(PendingTransaction(tx, index, position, shared))
        return pending, next_versions

    def _current_version(self, object_id: ObjectID, next_versions: dict[ObjectID, int]) -> int:
        version = next_versions.get(object_id)
        if version is None:
            version = self.epoch_store.next_shared_version(object_id)
        if version is None:
            # First use in this epoch: every earlier epoch's transactions have executed,
            # so the live version is the same on every validator.
            live = self._live_object(object_id)
            if live is None:
                raise SomaError(f"shared object {object_id} does not exist")
            version = live.version
        return version
