"""BCS messages of the validator service (`soma.validator.ValidatorService`), the API
that clients and the HTTP gateway call: submit a transaction, wait for its signed
effects, read objects, transactions and the validator's status."""

from __future__ import annotations

from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import BcsStruct, u32, u64
from soma.types.digests import TransactionDigest
from soma.types.effects import SignedTransactionEffects
from soma.types.object import Object, ObjectRef
from soma.types.system_state import SystemState
from soma.types.transaction import SignedTransaction

SERVICE = "soma.validator.ValidatorService"
SUBMIT = f"/{SERVICE}/SubmitTransaction"
WAIT_FOR_EFFECTS = f"/{SERVICE}/WaitForEffects"
GET_OBJECT = f"/{SERVICE}/GetObject"
GET_OWNED_OBJECTS = f"/{SERVICE}/GetOwnedObjects"
GET_TRANSACTION = f"/{SERVICE}/GetTransaction"
GET_STATUS = f"/{SERVICE}/GetStatus"

#: Longest a WaitForEffects call may ask the validator to wait.
MAX_WAIT_MS = 60_000
#: Most owned objects returned by one call.
MAX_OWNED_OBJECTS = 10_000


class SubmitTransactionRequest(BcsStruct):
    transaction: SignedTransaction


class SubmitTransactionResponse(BcsStruct):
    digest: TransactionDigest


class WaitForEffectsRequest(BcsStruct):
    digest: TransactionDigest
    timeout_ms: u32


class WaitForEffectsResponse(BcsStruct):
    """The signed effects, or None if they were not there within the timeout."""

    effects: SignedTransactionEffects | None


class GetObjectRequest(BcsStruct):
    object_id: ObjectID


class GetObjectResponse(BcsStruct):
    object: Object | None


class GetOwnedObjectsRequest(BcsStruct):
    owner: SomaAddress


class GetOwnedObjectsResponse(BcsStruct):
    objects: tuple[ObjectRef, ...]


class GetTransactionRequest(BcsStruct):
    digest: TransactionDigest


class GetTransactionResponse(BcsStruct):
    transaction: SignedTransaction | None
    effects: SignedTransactionEffects | None


class GetStatusRequest(BcsStruct):
    pass


class GetStatusResponse(BcsStruct):
    epoch: u64
    #: The last consensus commit ordered, and the last whose state root is known.
    latest_commit: u64
    accumulated_commit: u64
    state_root: bytes
    system_state: SystemState
