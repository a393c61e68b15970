"""The objects one transaction sees and changes while it executes.

Reads start from the loaded inputs; writes, creations and deletions are kept aside until
execution ends, so a failing transaction is rolled back by dropping them. At the end the
store turns the changes into canonical effects (sorted, with the Lamport version) and
the objects to write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from soma.authority.indexes import CoinIndexDelta
from soma.authority.store import TransactionOutputs
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import TransactionDigest
from soma.types.effects import (
    ChangedObject,
    EffectsObjectChange,
    ExecutionStatus,
    IDOperation,
    ObjectIn,
    ObjectInExist,
    ObjectInNotExist,
    ObjectOut,
    ObjectOutNotExist,
    ObjectOutWrite,
    TransactionEffects,
)
from soma.types.object import AddressOwner, Object
from soma.types.transaction import SignedTransaction


class ExecutionError(Exception):
    """Raised inside execution to turn the transaction into a failure; carries the
    failure status. Never escapes the executor."""

    def __init__(self, status: object) -> None:
        super().__init__(repr(status))
        self.status = status


class TemporaryStore:
    def __init__(
        self, digest: TransactionDigest, lamport_version: int, inputs: Mapping[ObjectID, Object]
    ) -> None:
        self.digest = digest
        self.lamport_version = lamport_version
        #: The inputs as loaded (their versions and owners are the effects' "before").
        self.inputs = dict(inputs)
        self._written: dict[ObjectID, Object] = {}
        self._created: list[ObjectID] = []
        self._deleted: set[ObjectID] = set()
        self._next_creation = 0

    # --- reads -------------------------------------------------------------------------

    def read(self, object_id: ObjectID) -> Object:
        obj = self._written.get(object_id)
        if obj is not None:
            return obj
        if object_id in self._deleted:
            raise KeyError(object_id)
        return self.inputs[object_id]

    # --- changes -----------------------------------------------------------------------

    def write(self, obj: Object) -> None:
        """Replace an input's or a created object's contents (or owner)."""
        if obj.id not in self.inputs and obj.id not in self._created:
            raise KeyError(f"object {obj.id} is neither an input nor created here")
        self._written[obj.id] = obj

    def create(self, obj: Object) -> None:
        self._created.append(obj.id)
        self._written[obj.id] = obj

    def delete(self, object_id: ObjectID) -> None:
        if object_id not in self.inputs:
            raise KeyError(f"object {object_id} is not an input")
        self._written.pop(object_id, None)
        self._deleted.add(object_id)

    def new_object_id(self) -> ObjectID:
        """IDs of created objects: derived from the transaction and a running index."""
        object_id = ObjectID.derive(self.digest, self._next_creation)
        self._next_creation += 1
        return object_id

    def reset(self) -> None:
        """Drop every change (a failed transaction keeps only its gas charge and bumps)."""
        self._written.clear()
        self._created.clear()
        self._deleted.clear()
        self._next_creation = 0

    def touch(self, object_ids: Iterable[ObjectID]) -> None:
        """Make sure these inputs are written (at the new version), even unchanged."""
        for object_id in object_ids:
            if object_id not in self._written and object_id not in self._deleted:
                self._written[object_id] = self.inputs[object_id]

    # --- the result --------------------------------------------------------------------

    def finish(
        self,
        transaction: SignedTransaction,
        status: ExecutionStatus,
        epoch: int,
        gas_id: ObjectID | None,
        gas_used: int,
    ) -> TransactionOutputs:
        digest, lamport = self.digest, self.lamport_version
        written: list[Object] = []
        changes: dict[ObjectID, tuple[ObjectIn, ObjectOut, IDOperation]] = {}
        owner_removals: list[tuple[SomaAddress, ObjectID]] = []
        owner_inserts = []
        # The owner-side indexes move with each address-owned input written or deleted
        # (as loaded) and each address-owned output.
        coins = CoinIndexDelta()
        for object_id, obj in self._written.items():
            final = obj.with_version(lamport, digest)
            written.append(final)
            new_address = final.owner_address()
            before = self.inputs.get(object_id)
            old_address = None
            if before is None:
                changes[object_id] = (
                    ObjectInNotExist(),
                    ObjectOutWrite(final.digest(), final.owner),
                    IDOperation.CREATED,
                )
            else:
                changes[object_id] = (
                    ObjectInExist(before.version, before.digest(), before.owner),
                    ObjectOutWrite(final.digest(), final.owner),
                    IDOperation.NONE,
                )
                old_address = before.owner_address()
                if old_address is not None and old_address != new_address:
                    owner_removals.append((old_address, object_id))
            ref = None
            if new_address is not None:
                ref = final.reference()
                owner_inserts.append((new_address, ref))
            coins.written(old_address, before, new_address, final, ref)
        deleted = sorted(self._deleted)
        for object_id in deleted:
            before = self.inputs[object_id]
            changes[object_id] = (
                ObjectInExist(before.version, before.digest(), before.owner),
                ObjectOutNotExist(),
                IDOperation.DELETED,
            )
            old_address = before.owner_address()
            if old_address is not None:
                owner_removals.append((old_address, object_id))
                coins.deleted(old_address, before)
        order = sorted(changes)
        changed = tuple(
            ChangedObject(object_id, EffectsObjectChange(*changes[object_id]))
            for object_id in order
        )
        gas_index = order.index(gas_id) if gas_id is not None and gas_id in changes else None
        dependencies = sorted(
            {obj.previous_transaction for obj in self.inputs.values()}
            - {digest, TransactionDigest.zero()}
        )
        effects = TransactionEffects(
            status=status,
            executed_epoch=epoch,
            transaction_digest=digest,
            dependencies=tuple(dependencies),
            changed_objects=changed,
            gas_object_index=gas_index,
            gas_used=gas_used,
            lamport_version=lamport,
        )
        return TransactionOutputs(
            transaction=transaction,
            effects=effects,
            written=tuple(sorted(written, key=lambda o: o.id)),
            deleted=tuple(deleted),
            owner_removals=tuple(sorted(owner_removals)),
            owner_inserts=tuple(sorted(owner_inserts, key=lambda e: (e[0], e[1].object_id))),
            coin_removals=tuple(coins.removals),
            coin_inserts=tuple(coins.inserts),
            balance_changes=tuple(coins.balance_changes),
        )


def is_owned_by(obj: Object, address: SomaAddress) -> bool:
    owner = obj.owner
    return isinstance(owner, AddressOwner) and owner.address == address
