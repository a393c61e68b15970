"""Checks a validator makes before it offers a user's transaction to consensus.

They read the validator's current state, so they can go stale (another transaction may
spend the coin before this one is ordered): execution checks again, in commit order, and
is what decides. These checks exist to refuse early, with a precise error, what would
certainly fail, and to keep junk out of blocks.
"""

from __future__ import annotations

from typing import Protocol

from soma.authority.errors import (
    InsufficientBalanceError,
    InsufficientGasError,
    InvalidGasUseError,
    InvalidObjectTypeError,
    InvalidOwnerError,
    ObjectDigestMismatchError,
    ObjectNotFoundError,
    ObjectVersionUnavailableError,
    TransactionExpiredError,
)
from soma.types.base import ObjectID
from soma.types.object import AddressOwner, Object
from soma.types.transaction import (
    AddStake,
    AddValidator,
    ImmOrOwnedInput,
    MergeCoins,
    PayCoins,
    SignedTransaction,
    SplitCoin,
    TransactionData,
    TransferCoin,
)


class LiveObjects(Protocol):
    def get_live_object(self, object_id: ObjectID) -> Object | None: ...


def check_signature_and_expiry(tx: SignedTransaction, epoch: int) -> None:
    """What needs no state: well formed, signed by the sender, not expired. Also what
    every validator checks of transactions it finds in blocks."""
    tx.verify()
    expiration = tx.data.expiration
    if expiration is not None and expiration < epoch:
        raise TransactionExpiredError(
            f"expiration: the transaction expired at the end of epoch {expiration}; "
            f"the current epoch is {epoch}"
        )


def check_inputs(data: TransactionData, objects: LiveObjects, fee: int) -> None:
    """Owned inputs live at the given refs and the sender's; gas and balances suffice."""
    if data.gas_budget < fee:
        raise InsufficientGasError(f"gas_budget {data.gas_budget} is below the fee {fee}")
    loaded: dict[ObjectID, Object] = {}
    for entry in data.input_objects():
        if not isinstance(entry, ImmOrOwnedInput):
            continue
        ref = entry.object_ref
        obj = objects.get_live_object(ref.object_id)
        if obj is None:
            raise ObjectNotFoundError(f"object {ref.object_id} does not exist")
        if obj.version != ref.version:
            raise ObjectVersionUnavailableError(
                f"object {ref.object_id} is at version {obj.version}, not {ref.version}"
            )
        if obj.digest() != ref.digest:
            raise ObjectDigestMismatchError(
                f"object {ref.object_id} at version {ref.version} has digest "
                f"{obj.digest()}, not {ref.digest}"
            )
        owner = obj.owner
        if not isinstance(owner, AddressOwner) or owner.address != data.sender:
            raise InvalidOwnerError(
                f"object {ref.object_id} is not owned by the sender {data.sender}"
            )
        loaded[ref.object_id] = obj
    assert data.gas_payment is not None  # well formed
    gas_id = data.gas_payment.object_id
    gas = loaded[gas_id]
    if not gas.is_coin():
        raise InvalidObjectTypeError(f"gas_payment: object {gas_id} is not a coin")
    if gas.coin_balance() < data.gas_budget:
        raise InsufficientGasError(
            f"gas_payment: coin {gas_id} holds {gas.coin_balance()}, below the gas_budget "
            f"{data.gas_budget}"
        )
    _check_balances(data, loaded, gas_id, fee)


def _coin_balance(loaded: dict[ObjectID, Object], object_id: ObjectID) -> int:
    obj = loaded[object_id]
    if not obj.is_coin():
        raise InvalidObjectTypeError(f"object {object_id} is not a coin")
    return obj.coin_balance()


def _check_balances(
    data: TransactionData, loaded: dict[ObjectID, Object], gas_id: ObjectID, fee: int
) -> None:
    kind = data.kind

    def available(ids: list[ObjectID]) -> int:
        total = sum(_coin_balance(loaded, i) for i in ids)
        return max(0, total - fee) if gas_id in ids else total

    def need(ids: list[ObjectID], amount: int) -> None:
        have = available(ids)
        if have < amount:
            where = f"coin {ids[0]}" if len(ids) == 1 else f"coins {', '.join(map(str, ids))}"
            raise InsufficientBalanceError(
                f"{where} hold {have} after the fee, {amount} needed"
                if gas_id in ids
                else f"{where} hold {have}, {amount} needed"
            )

    if isinstance(kind, MergeCoins | PayCoins) and gas_id in [r.object_id for r in kind.coins[1:]]:
        raise InvalidGasUseError(
            f"gas_payment: coin {gas_id} would be merged away; list it first in coins"
        )
    if isinstance(kind, TransferCoin):
        need([kind.coin.object_id], kind.amount or 0)
    elif isinstance(kind, PayCoins):
        need([r.object_id for r in kind.coins], sum(kind.amounts or ()))
    elif isinstance(kind, MergeCoins):
        for ref in kind.coins:
            _coin_balance(loaded, ref.object_id)
    elif isinstance(kind, SplitCoin):
        need([kind.coin.object_id], sum(kind.amounts))
    elif isinstance(kind, AddStake):
        need([kind.coin.object_id], kind.amount)
    elif isinstance(kind, AddValidator):
        need([kind.coin.object_id], kind.stake)
