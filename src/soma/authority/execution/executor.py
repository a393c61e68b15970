"""Execute one transaction against the live objects, deterministically.

The rules every honest validator applies identically:

- Versions are Lamport: every object the transaction writes gets
  `max(input versions) + 1`, including shared inputs at the versions consensus assigned.
- The fee (a protocol parameter) is taken from the gas coin first. If the gas coin is
  gone (consumed by an earlier transaction), not the sender's or not a coin, nothing can
  be charged: the effects are a failure that changes no owned object (mutable shared
  inputs are still rewritten at the Lamport version, because consensus already gave the
  next user of the shared object that version).
- Any other failure (an input consumed or missing, not the sender's, a balance too small,
  a bad argument) rolls every change back, charges the fee, and bumps the version of
  every usable input; nothing else changes. So a coin spent twice in commit order is
  spent once: the second transaction fails and the coin is not touched.
- The epoch change (`ChangeEpoch`) is a system transaction on the system state alone:
  no gas, no fee, never a failure (`epoch_change`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from soma.authority.execution import coins, validators
from soma.authority.execution.epoch_change import advance_epoch
from soma.authority.execution.temporary_store import ExecutionError, TemporaryStore, is_owned_by
from soma.authority.store import TransactionOutputs
from soma.types.base import ObjectID
from soma.types.effects import (
    ExecutionFailure,
    ExecutionFailureStatus,
    ExecutionStatus,
    ExecutionSuccess,
    InputObjectConsumed,
    InsufficientGas,
    InvalidObjectType,
    InvalidOwnership,
    ObjectNotFound,
)
from soma.types.error import SomaError
from soma.types.object import Object
from soma.types.transaction import (
    AddStake,
    AddValidator,
    ChangeEpoch,
    ConsensusCommitPrologue,
    GenesisTransaction,
    ImmOrOwnedInput,
    MergeCoins,
    PayCoins,
    RemoveValidator,
    SharedInput,
    SignedTransaction,
    SplitCoin,
    TransactionData,
    TransactionKind,
    TransferCoin,
    TransferObjects,
    WithdrawStake,
)


class UnsupportedTransactionError(SomaError):
    """A transaction kind this executor does not know."""

    code = "UNSUPPORTED_TRANSACTION"


class SharedVersionMismatchError(SomaError):
    """A shared input is not at the version consensus assigned: the transaction manager
    released it too early. A bug, never a user's fault: execution stops."""

    code = "SHARED_VERSION_MISMATCH"


class ObjectReader(Protocol):
    def get_live_object(self, object_id: ObjectID) -> Object | None: ...


def lamport_version(data: TransactionData, shared_versions: Mapping[ObjectID, int]) -> int:
    """The version every object the transaction writes gets."""
    highest = 0
    for item in data.input_objects():
        if isinstance(item, ImmOrOwnedInput):
            highest = max(highest, item.object_ref.version)
        elif isinstance(item, SharedInput):
            highest = max(highest, shared_versions[item.object_id])
    return highest + 1


def created_object_count(kind: TransactionKind) -> int:
    """How many objects the kind may create (their IDs are derived from the digest), so
    the transaction manager can order later users of them after it."""
    if isinstance(kind, TransferCoin):
        return 0 if kind.amount is None else 1
    if isinstance(kind, PayCoins):
        return 0 if kind.amounts is None else len(kind.recipients)
    if isinstance(kind, SplitCoin):
        return len(kind.amounts)
    if isinstance(kind, WithdrawStake):
        return 1
    if isinstance(kind, GenesisTransaction):
        return len(kind.objects)
    # The epoch change creates up to two coins per validator, a number its kind does not
    # give: it is ordered after every transaction of its epoch and before any of the
    # next, so nothing that could spend them is queued with it.
    return 0


def execute_transaction(
    transaction: SignedTransaction,
    shared_versions: Mapping[ObjectID, int],
    objects: ObjectReader,
    epoch: int,
    fee: int,
    *,
    epoch_fees: int = 0,
) -> TransactionOutputs:
    """The outputs of `transaction` executed in `epoch`, charging `fee`. `epoch_fees`
    matters to `ChangeEpoch` only: the sum of `gas_used` over every transaction of the
    ending epoch, which it pays to that epoch's validators."""
    data = transaction.data
    kind = data.kind
    digest = data.digest()
    if isinstance(kind, GenesisTransaction):
        store = TemporaryStore(digest, 1, {})
        for obj in kind.objects:
            store.create(obj)
        return store.finish(transaction, ExecutionSuccess(), epoch, None, 0)
    if isinstance(kind, ConsensusCommitPrologue):
        return TemporaryStore(digest, 1, {}).finish(transaction, ExecutionSuccess(), epoch, None, 0)
    if isinstance(kind, ChangeEpoch):
        return _change_epoch(transaction, kind, shared_versions, objects, epoch, epoch_fees)
    if kind.is_system():
        raise UnsupportedTransactionError(f"{type(kind).__name__} is not executed here")
    return _execute_user(transaction, shared_versions, objects, epoch, fee)


def _change_epoch(
    transaction: SignedTransaction,
    kind: ChangeEpoch,
    shared_versions: Mapping[ObjectID, int],
    objects: ObjectReader,
    epoch: int,
    epoch_fees: int,
) -> TransactionOutputs:
    """A system transaction: no gas, no fee, and it cannot fail (a refusal would be a
    bug in the validators' own rules, raised as `EpochChangeError`)."""
    data = transaction.data
    loaded = {
        item.object_id: _load_shared(item, shared_versions, objects)
        for item in data.input_objects()
        if isinstance(item, SharedInput)
    }
    store = TemporaryStore(data.digest(), lamport_version(data, shared_versions), loaded)
    advance_epoch(store, kind, epoch_fees)
    return store.finish(transaction, ExecutionSuccess(), epoch, None, 0)


def _load_shared(
    item: SharedInput, shared_versions: Mapping[ObjectID, int], objects: ObjectReader
) -> Object:
    version = shared_versions[item.object_id]
    live = objects.get_live_object(item.object_id)
    if live is None or live.version != version:
        found = None if live is None else live.version
        raise SharedVersionMismatchError(
            f"shared object {item.object_id} is at version {found}, consensus assigned {version}"
        )
    return live


def _execute_user(
    transaction: SignedTransaction,
    shared_versions: Mapping[ObjectID, int],
    objects: ObjectReader,
    epoch: int,
    fee: int,
) -> TransactionOutputs:
    data = transaction.data
    digest = data.digest()
    lamport = lamport_version(data, shared_versions)
    loaded: dict[ObjectID, Object] = {}
    mutable_shared: list[ObjectID] = []
    problems: dict[ObjectID, ExecutionFailureStatus] = {}
    for item in data.input_objects():
        if isinstance(item, SharedInput):
            loaded[item.object_id] = _load_shared(item, shared_versions, objects)
            if item.mutable:
                mutable_shared.append(item.object_id)
            continue
        assert isinstance(item, ImmOrOwnedInput)
        ref = item.object_ref
        live = objects.get_live_object(ref.object_id)
        if live is None or live.version != ref.version or live.digest() != ref.digest:
            # Decided from the live object alone, never from retained history (which a
            # validator may prune): moved past the version means consumed.
            if live is not None and live.version > ref.version:
                problems[ref.object_id] = InputObjectConsumed(ref.object_id, ref.version)
            else:
                problems[ref.object_id] = ObjectNotFound(ref.object_id)
        elif not is_owned_by(live, data.sender):
            problems[ref.object_id] = InvalidOwnership(ref.object_id)
        else:
            loaded[ref.object_id] = live

    assert data.gas_payment is not None  # checked as well-formed before ordering
    gas_id = data.gas_payment.object_id
    gas = loaded.get(gas_id)
    if gas is None or not gas.is_coin():
        # Nothing to charge: only the shared objects move on to their assigned version.
        reason = problems.get(gas_id, InvalidObjectType(gas_id))
        shared = {i: loaded[i] for i in mutable_shared}
        store = TemporaryStore(digest, lamport, shared)
        store.touch(mutable_shared)
        return store.finish(transaction, ExecutionFailure(reason), epoch, None, 0)

    store = TemporaryStore(digest, lamport, loaded)
    balance = gas.coin_balance()
    charge = min(fee, balance, data.gas_budget)
    status: ExecutionStatus
    if charge < fee:
        status = ExecutionFailure(InsufficientGas())
    elif problems:
        status = ExecutionFailure(problems[min(problems)])
    else:
        store.write(gas.with_coin_balance(balance - charge))
        try:
            _run_kind(store, data)
            status = ExecutionSuccess()
        except ExecutionError as e:
            assert isinstance(e.status, ExecutionFailureStatus)
            status = ExecutionFailure(e.status)
    if not status.is_success():
        store.reset()
        store.write(gas.with_coin_balance(balance - charge))
    store.touch(loaded)
    return store.finish(transaction, status, epoch, gas_id, charge)


def _run_kind(store: TemporaryStore, data: TransactionData) -> None:
    kind = data.kind
    assert data.gas_payment is not None
    gas = data.gas_payment.object_id
    if isinstance(kind, TransferCoin):
        coins.transfer_coin(store, kind)
    elif isinstance(kind, PayCoins):
        coins.pay_coins(store, kind, gas)
    elif isinstance(kind, MergeCoins):
        coins.merge_coins(store, kind, gas)
    elif isinstance(kind, SplitCoin):
        coins.split_coin(store, kind, data.sender)
    elif isinstance(kind, TransferObjects):
        coins.transfer_objects(store, kind)
    elif isinstance(kind, AddStake):
        validators.add_stake(store, kind, data.sender, gas)
    elif isinstance(kind, WithdrawStake):
        validators.withdraw_stake(store, kind, data.sender)
    elif isinstance(kind, AddValidator):
        validators.add_validator(store, kind, data.sender, gas)
    elif isinstance(kind, RemoveValidator):
        validators.remove_validator(store, data.sender)
    else:
        raise UnsupportedTransactionError(f"{type(kind).__name__} is not executed here")
