"""The perpetual store: a validator's objects, transactions and effects, kept across
epochs in RocksDB (or memory, for tests).

Every transaction's outputs land in one atomic write batch (its objects, the live
versions, the owner, coin and balance indexes, the transaction, its effects and the
executed marker), so a crash leaves each transaction either wholly executed or not at
all, and the indexes always agree with the objects. The write-back cache
(`soma.authority.cache`) groups several transactions into one batch; it never splits one.

The coin and balance indexes (`soma.authority.indexes`) came after the owner index: a
store written before them is backfilled once when it is opened, from the owner index and
the objects it names, and a metadata key records that it was.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence

from soma.authority.indexes import (
    BALANCE_CODEC,
    COIN_KEY_CODEC,
    Balance,
    BalanceChange,
    CoinKey,
    CoinPosition,
    add_deltas,
    coin_index_entries,
    sum_balance_changes,
)
from soma.authority.summary_store import TABLES as SUMMARY_TABLES
from soma.authority.summary_store import SummaryStore
from soma.storage import (
    RAW_BYTES,
    U64_BE,
    UTF8,
    Database,
    FixedBytesCodec,
    StructCodec,
    TableSpec,
    WriteBatch,
    tuple_codec,
)
from soma.types.base import ObjectID, SomaAddress
from soma.types.commit_summary import CommitSummary
from soma.types.digests import TransactionDigest, TransactionEffectsDigest
from soma.types.effects import TransactionEffects
from soma.types.epoch_start import EpochStart
from soma.types.error import SomaError
from soma.types.object import Object, ObjectRef
from soma.types.transaction import SignedTransaction

#: Key codecs shared with the epoch store.
OBJECT_ID_CODEC = FixedBytesCodec(32, ObjectID)
TX_DIGEST_CODEC = FixedBytesCodec(32, TransactionDigest)
_OBJECT_ID = OBJECT_ID_CODEC
_ADDRESS = FixedBytesCodec(32, SomaAddress)
_TX_DIGEST = TX_DIGEST_CODEC
_EFFECTS_DIGEST = FixedBytesCodec(32, TransactionEffectsDigest)

OBJECTS = TableSpec("objects", tuple_codec(_OBJECT_ID, U64_BE), StructCodec(Object))
LIVE_OBJECTS = TableSpec("live_objects", _OBJECT_ID, StructCodec(ObjectRef))
TRANSACTIONS = TableSpec("transactions", _TX_DIGEST, StructCodec(SignedTransaction))
EFFECTS = TableSpec("effects", _EFFECTS_DIGEST, StructCodec(TransactionEffects))
EXECUTED = TableSpec("executed_effects", _TX_DIGEST, _EFFECTS_DIGEST)
OWNER_INDEX = TableSpec("owner_index", tuple_codec(_ADDRESS, _OBJECT_ID), StructCodec(ObjectRef))
#: (epoch, commit index) -> the state accumulator after that commit.
STATE_ACCUMULATORS = TableSpec("state_accumulators", tuple_codec(U64_BE, U64_BE), RAW_BYTES)

#: Owner -> (total balance of its coins as a u128, number of coins).
BALANCE_INDEX = TableSpec("balance_index", _ADDRESS, BALANCE_CODEC)

#: (owner, 2^64-1-balance, object ID) -> ObjectRef: an owner's coins largest first.
COIN_INDEX = TableSpec("coin_index", COIN_KEY_CODEC, StructCodec(ObjectRef))
#: Facts about the store itself (which indexes it has built).
METADATA = TableSpec("metadata", UTF8, RAW_BYTES)
#: Epoch -> where it began (its system state and commit offset), recorded on entering it.
EPOCH_STARTS = TableSpec("epoch_starts", U64_BE, StructCodec(EpochStart))

TABLES = (
    OBJECTS,
    LIVE_OBJECTS,
    TRANSACTIONS,
    EFFECTS,
    EXECUTED,
    OWNER_INDEX,
    STATE_ACCUMULATORS,
    BALANCE_INDEX,
    COIN_INDEX,
    METADATA,
    EPOCH_STARTS,
    *SUMMARY_TABLES,
)

#: The metadata key saying the coin and balance indexes are complete, and its value.
INDEXES_KEY = "coin_balance_indexes"
INDEXES_VERSION = b"\x01"
#: Entries per write batch of the backfill (it may cover millions of objects).
BACKFILL_CHUNK = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class TransactionOutputs:
    """Everything one executed transaction writes, ready to be stored in one batch."""

    transaction: SignedTransaction
    effects: TransactionEffects
    #: Objects at their new version (created and mutated).
    written: tuple[Object, ...]
    #: IDs of objects the transaction deleted.
    deleted: tuple[ObjectID, ...]
    #: Owner-index entries to drop (the inputs' old owners) and to add.
    owner_removals: tuple[tuple[SomaAddress, ObjectID], ...]
    owner_inserts: tuple[tuple[SomaAddress, ObjectRef], ...]
    #: Coin-index keys to drop and entries to put (`soma.authority.indexes`).
    coin_removals: tuple[CoinKey, ...]
    coin_inserts: tuple[tuple[CoinKey, ObjectRef], ...]
    #: Per owner: what its total coin balance and its number of coins change by.
    balance_changes: tuple[BalanceChange, ...]

    @property
    def digest(self) -> TransactionDigest:
        return self.effects.transaction_digest


class AuthorityStore:
    """Typed access to the perpetual tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.objects = db.table(OBJECTS)
        self.live = db.table(LIVE_OBJECTS)
        self.transactions = db.table(TRANSACTIONS)
        self.effects = db.table(EFFECTS)
        self.executed = db.table(EXECUTED)
        self.owner_index = db.table(OWNER_INDEX)
        self.accumulators = db.table(STATE_ACCUMULATORS)
        self.balance_index = db.table(BALANCE_INDEX)
        self.coin_index = db.table(COIN_INDEX)
        self.metadata = db.table(METADATA)
        self.epoch_starts = db.table(EPOCH_STARTS)
        self.summaries = SummaryStore(db)
        if self.metadata.get(INDEXES_KEY) != INDEXES_VERSION:
            self.backfill_indexes()

    @classmethod
    def open_memory(cls) -> AuthorityStore:
        return cls(Database.open_memory(TABLES))

    @classmethod
    def open_rocksdb(cls, path: str | os.PathLike[str]) -> AuthorityStore:
        db = Database.open_rocksdb(path, TABLES)
        try:
            return cls(db)
        except BaseException:
            db.close()  # a backfill that failed must not keep the database locked
            raise

    def close(self) -> None:
        self.db.close()

    # --- reads ---------------------------------------------------------------------------

    def get_live_ref(self, object_id: ObjectID) -> ObjectRef | None:
        return self.live.get(object_id)

    def get_object_at(self, object_id: ObjectID, version: int) -> Object | None:
        return self.objects.get((object_id, version))

    def get_live_object(self, object_id: ObjectID) -> Object | None:
        ref = self.live.get(object_id)
        return None if ref is None else self.objects.get((object_id, ref.version))

    def executed_effects_digest(self, digest: TransactionDigest) -> TransactionEffectsDigest | None:
        return self.executed.get(digest)

    def get_effects(self, digest: TransactionDigest) -> TransactionEffects | None:
        effects_digest = self.executed.get(digest)
        return None if effects_digest is None else self.effects.get(effects_digest)

    def get_transaction(self, digest: TransactionDigest) -> SignedTransaction | None:
        return self.transactions.get(digest)

    def owned_refs(
        self, owner: SomaAddress, start: ObjectID | None = None
    ) -> Iterator[tuple[ObjectID, ObjectRef]]:
        """Live objects owned by `owner`, by ID, from `start` (inclusive)."""
        first = (owner, start if start is not None else ObjectID.zero())
        for (address, object_id), ref in self.owner_index.items(first):
            if address != owner:
                break
            yield object_id, ref

    def coins(
        self, owner: SomaAddress, start: CoinPosition | None = None
    ) -> Iterator[tuple[CoinPosition, ObjectRef]]:
        """Coins owned by `owner`, largest first (ties by ID), from `start` (inclusive)."""
        inverted, object_id = start if start is not None else (0, ObjectID.zero())
        for (address, inv, coin_id), ref in self.coin_index.items((owner, inverted, object_id)):
            if address != owner:
                break
            yield (inv, coin_id), ref

    def balance(self, owner: SomaAddress) -> Balance:
        """The total balance of `owner`'s coins and their number (one read)."""
        entry = self.balance_index.get(owner)
        return entry if entry is not None else (0, 0)

    def live_refs(self) -> Iterator[ObjectRef]:
        """Every live object (for checks and tests: a full scan)."""
        return self.live.values()

    def epoch_start(self, epoch: int) -> EpochStart | None:
        return self.epoch_starts.get(epoch)

    def current_epoch_start(self) -> EpochStart | None:
        """The last epoch this node entered."""
        last = self.epoch_starts.last()
        return None if last is None else last[1]

    def put_epoch_start(self, start: EpochStart) -> None:
        """Enter `start.epoch` (synced: on restart the node resumes in it)."""
        self.epoch_starts.put(start.epoch, start, sync=True)

    def accumulator_at(self, epoch: int, index: int) -> bytes | None:
        return self.accumulators.get((epoch, index))

    def last_accumulator(self) -> tuple[tuple[int, int], bytes] | None:
        return self.accumulators.last()

    # --- writes --------------------------------------------------------------------------

    def _add_outputs(self, batch: WriteBatch, outputs: TransactionOutputs) -> None:
        """Put one transaction's outputs in `batch`, all but its balance changes: those
        are read, modified and written once per batch (`write_outputs`), since two
        transactions of one batch may change the same balance."""
        for obj in outputs.written:
            ref = obj.reference()
            batch.put(self.objects, (obj.id, obj.version), obj)
            batch.put(self.live, obj.id, ref)
        for object_id in outputs.deleted:
            batch.delete(self.live, object_id)
        for key in outputs.owner_removals:
            batch.delete(self.owner_index, key)
        for address, ref in outputs.owner_inserts:
            batch.put(self.owner_index, (address, ref.object_id), ref)
        for coin_key in outputs.coin_removals:
            batch.delete(self.coin_index, coin_key)
        for coin_key, ref in outputs.coin_inserts:
            batch.put(self.coin_index, coin_key, ref)
        effects = outputs.effects
        batch.put(self.transactions, outputs.digest, outputs.transaction)
        batch.put(self.effects, effects.digest(), effects)
        batch.put(self.executed, outputs.digest, effects.digest())

    def write_outputs(
        self,
        outputs: Sequence[TransactionOutputs],
        *,
        sync: bool,
        balance_deltas: Mapping[SomaAddress, Sequence[int]] | None = None,
    ) -> None:
        """Write the outputs of these transactions, in order, in one atomic batch.

        Their balance changes are summed per owner and applied with one read of the
        stored entries; a caller that summed them already (the write-back cache, as
        it recorded the transactions) passes the sums as `balance_deltas`."""
        batch = self.db.batch()
        for item in outputs:
            self._add_outputs(batch, item)
        if balance_deltas is None:
            balance_deltas = sum_balance_changes(item.balance_changes for item in outputs)
        if balance_deltas:
            owners = list(balance_deltas)
            stored = self.balance_index.multi_get(owners)
            for owner, entry in add_deltas(owners, stored, balance_deltas):
                if entry is None:
                    batch.delete(self.balance_index, owner)
                else:
                    batch.put(self.balance_index, owner, entry)
        self.db.write(batch, sync=sync)

    def backfill_indexes(self) -> None:
        """Build the coin and balance indexes from the owner index and the objects it
        names, then record that they are complete.

        Written in batches of `BACKFILL_CHUNK` entries (the store may hold millions),
        the record last: a crash in the middle leaves no record, and the next open
        clears what was written and builds them again, wholly."""
        batch = self.db.batch()
        for key in self.coin_index.keys():  # noqa: SIM118 (a table, not a dict)
            batch.delete(self.coin_index, key)
            batch = self._flush_full(batch)
        for owner in self.balance_index.keys():  # noqa: SIM118
            batch.delete(self.balance_index, owner)
            batch = self._flush_full(batch)
        totals: dict[SomaAddress, list[int]] = {}
        chunk: list[tuple[SomaAddress, ObjectRef]] = []
        for (owner, _), ref in self.owner_index.items():
            chunk.append((owner, ref))
            if len(chunk) == BACKFILL_CHUNK:
                batch = self._backfill_chunk(batch, chunk, totals)
                chunk = []
        batch = self._backfill_chunk(batch, chunk, totals)
        for owner, (balance, coins) in totals.items():
            batch.put(self.balance_index, owner, (balance, coins))
            batch = self._flush_full(batch)
        batch.put(self.metadata, INDEXES_KEY, INDEXES_VERSION)
        self.db.write(batch, sync=True)

    def _backfill_chunk(
        self,
        batch: WriteBatch,
        chunk: list[tuple[SomaAddress, ObjectRef]],
        totals: dict[SomaAddress, list[int]],
    ) -> WriteBatch:
        objects = self.objects.multi_get([(ref.object_id, ref.version) for _, ref in chunk])
        owned = []
        for (owner, ref), obj in zip(chunk, objects, strict=True):
            if obj is None:
                raise SomaError(f"the owner index names {ref}, which the store lacks")
            owned.append((owner, ref, obj))
        for key, ref in coin_index_entries(owned, totals):
            batch.put(self.coin_index, key, ref)
        return self._flush_full(batch)

    def _flush_full(self, batch: WriteBatch) -> WriteBatch:
        """`batch` written (unsynced) and a new one if it holds a chunk's worth."""
        if len(batch) < BACKFILL_CHUNK:
            return batch
        self.db.write(batch, sync=False)
        return self.db.batch()

    def sync(self) -> None:
        """Make every write so far durable (flushes are written unsynced)."""
        self.db.sync()

    def put_accumulator(self, epoch: int, index: int, state: bytes, *, sync: bool) -> None:
        self.accumulators.put((epoch, index), state, sync=sync)

    def put_commit_result(
        self,
        epoch: int,
        index: int,
        state: bytes,
        summary: CommitSummary,
        digests: tuple[TransactionDigest, ...],
        *,
        sync: bool,
    ) -> None:
        """The state accumulator after commit `index` of `epoch`, the node's summary of
        that commit and its contents, in one batch: a summary is never stored without
        the state it summarises, nor the other way round."""
        batch = self.db.batch()
        batch.put(self.accumulators, (epoch, index), state)
        self.summaries.add_summary(batch, summary, digests)
        self.db.write(batch, sync=sync)
