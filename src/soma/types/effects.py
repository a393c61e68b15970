"""Transaction effects: what executing a transaction did, in a form every honest
validator produces byte for byte, so their signatures over it can be combined into a
certificate (the client's proof of finality).
"""

from __future__ import annotations

import enum
import itertools
import re
import typing
from typing import ClassVar

from soma.types.base import ObjectID
from soma.types.bcs import BcsEnum, BcsStruct, u32, u64
from soma.types.digests import Hashed, ObjectDigest, TransactionDigest, TransactionEffectsDigest
from soma.types.envelope import CertifiedEnvelope, SignedEnvelope
from soma.types.error import InvalidValueError
from soma.types.intent import Intent, IntentScope
from soma.types.object import ObjectRef, Owner


def screaming_snake(name: str) -> str:
    """A failure's code from its variant's name: `InputObjectConsumed` ->
    `INPUT_OBJECT_CONSUMED` (how the SDK, the CLI and the metrics name failures)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


class ExecutionFailureStatus(BcsEnum):
    """Why a transaction failed. A failed transaction still charges its fee and bumps
    the versions of its inputs, and changes nothing else. Tags are wire format."""

    @property
    def code(self) -> str:
        return screaming_snake(type(self).__name__)


class InsufficientGas(ExecutionFailureStatus, tag=0):
    """The gas coin cannot pay the fee, or the budget is below it."""


class InsufficientCoinBalance(ExecutionFailureStatus, tag=1):
    object_id: ObjectID
    balance: u64
    required: u64


class ObjectNotFound(ExecutionFailureStatus, tag=2):
    object_id: ObjectID


class InvalidOwnership(ExecutionFailureStatus, tag=3):
    object_id: ObjectID


class InputObjectConsumed(ExecutionFailureStatus, tag=4):
    """An owned input was already consumed by an earlier transaction (no double spend)."""

    object_id: ObjectID
    version: u64


class CoinBalanceOverflow(ExecutionFailureStatus, tag=5):
    object_id: ObjectID


class InvalidObjectType(ExecutionFailureStatus, tag=6):
    object_id: ObjectID


class InvalidArguments(ExecutionFailureStatus, tag=7):
    reason: str


class ValidatorAlreadyExists(ExecutionFailureStatus, tag=8):
    reason: str


class ValidatorNotFound(ExecutionFailureStatus, tag=9):
    reason: str


class InsufficientStake(ExecutionFailureStatus, tag=10):
    reason: str


class ExecutionStatus(BcsEnum):
    def is_success(self) -> bool:
        return isinstance(self, ExecutionSuccess)


class ExecutionSuccess(ExecutionStatus, tag=0):
    pass


class ExecutionFailure(ExecutionStatus, tag=1):
    error: ExecutionFailureStatus


class ObjectIn(BcsEnum):
    """An object's state before the transaction."""


class ObjectInNotExist(ObjectIn, tag=0):
    pass


class ObjectInExist(ObjectIn, tag=1):
    version: u64
    digest: ObjectDigest
    owner: Owner


class ObjectOut(BcsEnum):
    """An object's state after the transaction."""


class ObjectOutNotExist(ObjectOut, tag=0):
    pass


class ObjectOutWrite(ObjectOut, tag=1):
    digest: ObjectDigest
    owner: Owner


class IDOperation(enum.IntEnum):
    NONE = 0
    CREATED = 1
    DELETED = 2


class EffectsObjectChange(BcsStruct):
    input_state: ObjectIn
    output_state: ObjectOut
    id_operation: IDOperation


class ChangedObject(BcsStruct):
    object_id: ObjectID
    change: EffectsObjectChange


class TransactionEffects(Hashed[TransactionEffectsDigest]):
    """What a transaction did. Every honest validator must produce these bytes exactly,
    so the constructor enforces the canonical form: changed objects sorted by ID and
    dependencies sorted by digest (both without repeats), each change one of create /
    mutate / delete, the gas object (if any) written, and the Lamport version above every
    input version. Bytes breaking any of these are rejected when decoded."""

    INTENT: ClassVar[Intent] = Intent.soma(IntentScope.TRANSACTION_EFFECTS)
    DIGEST_TAG = "TransactionEffects"
    DIGEST_TYPE = TransactionEffectsDigest

    status: ExecutionStatus
    executed_epoch: u64
    transaction_digest: TransactionDigest
    dependencies: tuple[TransactionDigest, ...]
    changed_objects: tuple[ChangedObject, ...]
    gas_object_index: u32 | None
    gas_used: u64
    lamport_version: u64

    def __post_init__(self) -> None:
        ids = [c.object_id for c in self.changed_objects]
        if any(a >= b for a, b in itertools.pairwise(ids)):
            raise InvalidValueError("changed objects must be sorted by ID without repeats")
        if any(a >= b for a, b in itertools.pairwise(self.dependencies)):
            raise InvalidValueError("dependencies must be sorted by digest without repeats")
        if self.transaction_digest in self.dependencies:
            raise InvalidValueError("a transaction cannot depend on itself")
        for c in self.changed_objects:
            _check_change(c, self.lamport_version)
        if self.gas_object_index is not None:
            if self.gas_object_index >= len(self.changed_objects):
                raise InvalidValueError(
                    f"gas object index {self.gas_object_index} is outside the "
                    f"{len(self.changed_objects)} changed objects"
                )
            gas = self.changed_objects[self.gas_object_index].change.output_state
            if not isinstance(gas, ObjectOutWrite):
                raise InvalidValueError("the gas object must be written")

    def signing_epoch(self) -> int:
        """Effects are signed in the epoch they were executed in, never another."""
        return self.executed_epoch

    def _refs(self, op: IDOperation | None, written: bool) -> list[ObjectRef]:
        refs = []
        for c in self.changed_objects:
            out = c.change.output_state
            if op is not None and c.change.id_operation != op:
                continue
            if written and isinstance(out, ObjectOutWrite):
                refs.append(ObjectRef(c.object_id, self.lamport_version, out.digest))
        return refs

    def created(self) -> list[ObjectRef]:
        return self._refs(IDOperation.CREATED, written=True)

    def mutated(self) -> list[ObjectRef]:
        return self._refs(IDOperation.NONE, written=True)

    def all_written(self) -> list[ObjectRef]:
        """References of every object this transaction wrote, at their new version."""
        return self._refs(None, written=True)

    def deleted(self) -> list[ObjectID]:
        return [
            c.object_id
            for c in self.changed_objects
            if isinstance(c.change.output_state, ObjectOutNotExist)
        ]

    def gas_object(self) -> ObjectRef | None:
        if self.gas_object_index is None:
            return None
        c = self.changed_objects[self.gas_object_index]
        out = typing.cast(ObjectOutWrite, c.change.output_state)  # checked on construction
        return ObjectRef(c.object_id, self.lamport_version, out.digest)


_VALID_CHANGES: dict[IDOperation, tuple[type[ObjectIn], type[ObjectOut]]] = {
    IDOperation.CREATED: (ObjectInNotExist, ObjectOutWrite),
    IDOperation.NONE: (ObjectInExist, ObjectOutWrite),
    IDOperation.DELETED: (ObjectInExist, ObjectOutNotExist),
}


def _check_change(changed: ChangedObject, lamport_version: int) -> None:
    change = changed.change
    before, after = _VALID_CHANGES[change.id_operation]
    if type(change.input_state) is not before or type(change.output_state) is not after:
        raise InvalidValueError(
            f"object {changed.object_id}: {change.id_operation.name} cannot go from "
            f"{type(change.input_state).__name__} to {type(change.output_state).__name__}"
        )
    before_state = change.input_state
    if isinstance(before_state, ObjectInExist) and before_state.version >= lamport_version:
        raise InvalidValueError(
            f"object {changed.object_id}: input version {before_state.version} "
            f"is not below the Lamport version {lamport_version}"
        )


class SignedTransactionEffects(SignedEnvelope[TransactionEffects]):
    """One validator's signed effects."""


class CertifiedTransactionEffects(CertifiedEnvelope[TransactionEffects]):
    """Effects signed by a quorum: the transaction is final."""
