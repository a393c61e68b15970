"""The per-epoch store: what one epoch's consensus decided for execution.

Kept in its own database (one per epoch, dropped whole when the epoch is over), so
reconfiguration replaces it in one step and nothing in it can leak into the next epoch:

- the consensus watermark: the last commit whose transactions were ordered here;
- the digests processed in this epoch (a transaction is ordered once per epoch);
- the shared-object versions assigned to each transaction, and the next version of
  every shared object;
- the ordered transactions of each commit and those not yet executed ("pending").

One synced batch per commit writes all of it, so after a crash the epoch store is at a
commit boundary: commits up to the watermark are ordered (their pending transactions are
executed again if their outputs were not yet stored), later ones come again from
consensus.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

from soma.authority.store import OBJECT_ID_CODEC, TX_DIGEST_CODEC
from soma.storage import (
    U32_BE,
    U64_BE,
    UTF8,
    Database,
    StructCodec,
    TableSpec,
    tuple_codec,
)
from soma.types.base import ObjectID
from soma.types.bcs import BcsStruct, u32, u64
from soma.types.commit_summary import SignedCommitSummary
from soma.types.committee import Committee
from soma.types.digests import TransactionDigest
from soma.types.system_state import SystemState
from soma.types.transaction import SignedTransaction

_OBJECT_ID = OBJECT_ID_CODEC
_TX_DIGEST = TX_DIGEST_CODEC


class SharedVersion(BcsStruct):
    object_id: ObjectID
    version: u64


class PendingTransaction(BcsStruct):
    """A transaction as consensus ordered it: its place, and the shared versions it got."""

    transaction: SignedTransaction
    commit_index: u64
    position: u32
    shared_versions: tuple[SharedVersion, ...]

    def shared_version_map(self) -> dict[ObjectID, int]:
        return {s.object_id: s.version for s in self.shared_versions}

    @property
    def key(self) -> tuple[int, int]:
        return (self.commit_index, self.position)


class SharedAssignments(BcsStruct):
    """The shared-object versions consensus assigned to one transaction."""

    versions: tuple[SharedVersion, ...]


class CommitTransactions(BcsStruct):
    """The digests a commit ordered, in order (the prologue first)."""

    digests: tuple[TransactionDigest, ...]
    timestamp_ms: u64


META = TableSpec("epoch_meta", UTF8, U64_BE)
PROCESSED = TableSpec("processed_transactions", _TX_DIGEST, U64_BE)
NEXT_SHARED_VERSION = TableSpec("next_shared_version", _OBJECT_ID, U64_BE)
SHARED_ASSIGNMENTS = TableSpec(
    "shared_version_assignments", _TX_DIGEST, StructCodec(SharedAssignments)
)
PENDING = TableSpec(
    "pending_execution", tuple_codec(U64_BE, U32_BE), StructCodec(PendingTransaction)
)
COMMITS = TableSpec("ordered_commits", U64_BE, StructCodec(CommitTransactions))
#: Summary signatures ordered by consensus and not yet part of a certificate, by
#: (summary index, the commit that ordered it, its position there): consensus order.
SUMMARY_SIGNATURES = TableSpec(
    "summary_signatures",
    tuple_codec(U64_BE, U64_BE, U32_BE),
    StructCodec(SignedCommitSummary),
)
#: Authorities (committee index) whose end-of-publish consensus ordered, and the commit
#: that ordered each (`soma.authority.epoch_end`).
END_OF_PUBLISH = TableSpec("end_of_publish", U32_BE, U64_BE)
TABLES = (
    META,
    END_OF_PUBLISH,
    PROCESSED,
    NEXT_SHARED_VERSION,
    SHARED_ASSIGNMENTS,
    PENDING,
    COMMITS,
    SUMMARY_SIGNATURES,
)

_WATERMARK = "consensus_watermark"
#: The first commit whose timestamp reached the epoch's end time.
_CLOSING = "closing_commit"
#: The epoch's last commit: the one that ordered 2f+1 stake of end-of-publish (or, on a
#: node that syncs, the one ending with the epoch change).
_LAST = "last_commit"


class AuthorityPerEpochStore:
    """One epoch's committee, system state (as of its start) and tables."""

    def __init__(
        self,
        db: Database,
        committee: Committee,
        system_state: SystemState,
        commit_offset: int = 0,
    ) -> None:
        """`commit_offset`: the global index of the last commit before this epoch."""
        if committee.epoch != system_state.epoch:
            raise ValueError(
                f"committee of epoch {committee.epoch} with the system state of epoch "
                f"{system_state.epoch}"
            )
        self.db = db
        self.committee = committee
        self.system_state = system_state
        self.commit_offset = commit_offset
        self._meta = db.table(META)
        self._processed = db.table(PROCESSED)
        self._next_shared = db.table(NEXT_SHARED_VERSION)
        self._assignments = db.table(SHARED_ASSIGNMENTS)
        self._pending = db.table(PENDING)
        self._commits = db.table(COMMITS)
        self._signatures = db.table(SUMMARY_SIGNATURES)
        self._end_of_publish = db.table(END_OF_PUBLISH)
        #: Every signature below this summary index is forgotten already.
        first = self._signatures.first()
        self._signatures_floor = 0 if first is None else first[0][0]

    @classmethod
    def open_memory(
        cls, committee: Committee, system_state: SystemState, commit_offset: int = 0
    ) -> AuthorityPerEpochStore:
        return cls(Database.open_memory(TABLES), committee, system_state, commit_offset)

    @classmethod
    def open_rocksdb(
        cls,
        path: str | os.PathLike[str],
        committee: Committee,
        system_state: SystemState,
        commit_offset: int = 0,
    ) -> AuthorityPerEpochStore:
        return cls(Database.open_rocksdb(path, TABLES), committee, system_state, commit_offset)

    @property
    def epoch(self) -> int:
        return self.committee.epoch

    @property
    def transaction_fee(self) -> int:
        return self.system_state.parameters.transaction_fee

    def close(self) -> None:
        self.db.close()

    # --- reads ---------------------------------------------------------------------------

    def last_consensus_commit(self) -> int:
        """The last commit ordered in this epoch (0 before the first)."""
        return self._meta.get(_WATERMARK) or 0

    def closing_commit(self) -> int | None:
        """The commit that closed the epoch (its timestamp reached the end time)."""
        return self._meta.get(_CLOSING)

    def last_commit(self) -> int | None:
        """The epoch's last commit, once fixed."""
        return self._meta.get(_LAST)

    def end_of_publish(self) -> dict[int, int]:
        """Authority index -> the commit that ordered its end-of-publish."""
        return dict(self._end_of_publish.items())

    def is_processed(self, digest: TransactionDigest) -> bool:
        return self._processed.contains(digest)

    def processed_many(self, digests: Sequence[TransactionDigest]) -> list[bool]:
        return [v is not None for v in self._processed.multi_get(digests)]

    def next_shared_version(self, object_id: ObjectID) -> int | None:
        return self._next_shared.get(object_id)

    def assigned_shared_versions(self, digest: TransactionDigest) -> dict[ObjectID, int] | None:
        """The shared versions a transaction ordered in this epoch got (None if it had no
        shared input or was not ordered here)."""
        found = self._assignments.get(digest)
        return None if found is None else {s.object_id: s.version for s in found.versions}

    def pending(self) -> Iterator[PendingTransaction]:
        """Ordered transactions whose outputs were not yet known stored, in order."""
        return self._pending.values()

    def commit_transactions(self, index: int) -> CommitTransactions | None:
        return self._commits.get(index)

    def summary_signatures(self) -> Iterator[SignedCommitSummary]:
        """The summary signatures kept, by summary index, in consensus order."""
        return self._signatures.values()

    # --- writes --------------------------------------------------------------------------

    def record_commit(
        self,
        index: int,
        timestamp_ms: int,
        ordered: Sequence[PendingTransaction],
        next_versions: dict[ObjectID, int],
        signatures: Sequence[SignedCommitSummary] = (),
        *,
        end_of_publish: Sequence[int] = (),
        closing: bool = False,
        last: bool = False,
        sync: bool = True,
    ) -> None:
        """Everything commit `index` decided, in one batch: its transactions and the
        summary signatures it ordered. Synced for a commit from consensus (its replay
        relies on it); a commit fetched by state sync can be fetched again, so it is
        made durable at the next durability point instead (`sync()`)."""
        batch = self.db.batch()
        for position, signed in enumerate(signatures):
            batch.put(self._signatures, (signed.data.index, index, position), signed)
        for item in ordered:
            batch.put(self._pending, item.key, item)
            batch.put(self._processed, item.transaction.digest(), index)
            if item.shared_versions:
                batch.put(
                    self._assignments,
                    item.transaction.digest(),
                    SharedAssignments(item.shared_versions),
                )
        for object_id in sorted(next_versions):
            batch.put(self._next_shared, object_id, next_versions[object_id])
        digests = tuple(item.transaction.digest() for item in ordered)
        batch.put(self._commits, index, CommitTransactions(digests, timestamp_ms))
        for author in end_of_publish:
            batch.put(self._end_of_publish, author, index)
        if closing:
            batch.put(self._meta, _CLOSING, index)
        if last:
            batch.put(self._meta, _LAST, index)
        batch.put(self._meta, _WATERMARK, index)
        self.db.write(batch, sync=sync)

    def record_after_last(
        self, index: int, signatures: Sequence[SignedCommitSummary], *, sync: bool = True
    ) -> None:
        """A commit after the epoch's last one: consensus runs on only until the epoch's
        summaries are certified, so only the summary signatures it ordered count; it
        orders no transaction and has no summary."""
        batch = self.db.batch()
        for position, signed in enumerate(signatures):
            batch.put(self._signatures, (signed.data.index, index, position), signed)
        batch.put(self._meta, _WATERMARK, index)
        self.db.write(batch, sync=sync)

    def sync(self) -> None:
        """Make every write so far durable."""
        self.db.sync()

    def forget_signatures_through(self, summary_index: int) -> None:
        """Signatures of summaries up to `summary_index` are part of certificates now
        (or can no longer be): drop them. Unsynced: a restart may certify them again,
        to the same summaries. Each call scans only from where the last one stopped:
        a scan from the start would walk every deletion ever made (RocksDB keeps them
        as tombstones for a while), a cost that grows with every commit."""
        if summary_index < self._signatures_floor:
            return
        batch = self.db.batch()
        start = (self._signatures_floor, 0, 0)
        for key in self._signatures.keys(start=start, end=(summary_index + 1, 0, 0)):
            batch.delete(self._signatures, key)
        self.db.write(batch, sync=False)
        self._signatures_floor = summary_index + 1

    def forget_pending(self, keys: Iterable[tuple[int, int]]) -> None:
        """Executed and stored: no longer pending. Unsynced: if lost, the restart finds
        them executed and skips them."""
        batch = self.db.batch()
        for key in keys:
            batch.delete(self._pending, key)
        self.db.write(batch, sync=False)
