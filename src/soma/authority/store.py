"""The perpetual store: a validator's objects, transactions and effects, kept across
epochs in RocksDB (or memory, for tests).

Every transaction's outputs land in one atomic write batch (its objects, the live
versions, the owner index, the transaction, its effects and the executed marker), so a
crash leaves each transaction either wholly executed or not at all. The write-back cache
(`soma.authority.cache`) groups several transactions into one batch; it never splits one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence

from soma.storage import (
    RAW_BYTES,
    U64_BE,
    Database,
    FixedBytesCodec,
    StructCodec,
    TableSpec,
    WriteBatch,
    tuple_codec,
)
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import TransactionDigest, TransactionEffectsDigest
from soma.types.effects import TransactionEffects
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

TABLES = (
    OBJECTS,
    LIVE_OBJECTS,
    TRANSACTIONS,
    EFFECTS,
    EXECUTED,
    OWNER_INDEX,
    STATE_ACCUMULATORS,
)


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

    @classmethod
    def open_memory(cls) -> AuthorityStore:
        return cls(Database.open_memory(TABLES))

    @classmethod
    def open_rocksdb(cls, path: str | os.PathLike[str]) -> AuthorityStore:
        return cls(Database.open_rocksdb(path, TABLES))

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

    def owned_refs(self, owner: SomaAddress) -> Iterator[tuple[ObjectID, ObjectRef]]:
        """Live objects owned by `owner`, by ID."""
        start = (owner, ObjectID.zero())
        for (address, object_id), ref in self.owner_index.items(start):
            if address != owner:
                break
            yield object_id, ref

    def live_refs(self) -> Iterator[ObjectRef]:
        """Every live object (for checks and tests: a full scan)."""
        return self.live.values()

    def accumulator_at(self, epoch: int, index: int) -> bytes | None:
        return self.accumulators.get((epoch, index))

    def last_accumulator(self) -> tuple[tuple[int, int], bytes] | None:
        return self.accumulators.last()

    # --- writes --------------------------------------------------------------------------

    def add_outputs(self, batch: WriteBatch, outputs: TransactionOutputs) -> None:
        """Put one transaction's outputs in `batch` (whole: never part of them)."""
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
        effects = outputs.effects
        batch.put(self.transactions, outputs.digest, outputs.transaction)
        batch.put(self.effects, effects.digest(), effects)
        batch.put(self.executed, outputs.digest, effects.digest())

    def write_outputs(self, outputs: Sequence[TransactionOutputs], *, sync: bool) -> None:
        batch = self.db.batch()
        for item in outputs:
            self.add_outputs(batch, item)
        self.db.write(batch, sync=sync)

    def sync(self) -> None:
        """Make every write so far durable (flushes are written unsynced)."""
        self.db.sync()

    def put_accumulator(self, epoch: int, index: int, state: bytes, *, sync: bool) -> None:
        self.accumulators.put((epoch, index), state, sync=sync)
