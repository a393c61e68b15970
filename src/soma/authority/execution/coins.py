"""Coin and object transactions: transfer, pay, merge, split, transfer objects.

Each function changes the temporary store or raises `ExecutionError` with the failure
status; the executor rolls a failure back and charges the fee."""

from __future__ import annotations

from soma.authority.execution.temporary_store import ExecutionError, TemporaryStore
from soma.types.base import ObjectID, SomaAddress
from soma.types.effects import (
    CoinBalanceOverflow,
    InsufficientCoinBalance,
    InvalidArguments,
    InvalidObjectType,
)
from soma.types.object import AddressOwner, Object
from soma.types.transaction import MergeCoins, PayCoins, SplitCoin, TransferCoin, TransferObjects

MAX_BALANCE = 2**64 - 1


def coin(store: TemporaryStore, object_id: ObjectID) -> Object:
    obj = store.read(object_id)
    if not obj.is_coin():
        raise ExecutionError(InvalidObjectType(object_id))
    return obj


def new_coin(store: TemporaryStore, balance: int, owner: SomaAddress) -> None:
    store.create(Object.new_coin(store.new_object_id(), balance, AddressOwner(owner), store.digest))


def take(store: TemporaryStore, object_id: ObjectID, amount: int) -> None:
    """Take `amount` out of a coin, failing if it holds less."""
    obj = coin(store, object_id)
    balance = obj.coin_balance()
    if balance < amount:
        raise ExecutionError(InsufficientCoinBalance(object_id, balance, amount))
    store.write(obj.with_coin_balance(balance - amount))


def spend(store: TemporaryStore, object_id: ObjectID, amount: int, gas: ObjectID) -> None:
    """Take `amount` out of a coin to put it elsewhere (stake). A coin left empty is
    deleted, unless it is the gas coin, which must survive to record the fee."""
    take(store, object_id, amount)
    if object_id != gas and store.read(object_id).coin_balance() == 0:
        store.delete(object_id)


def merge_into_first(store: TemporaryStore, coins: tuple[ObjectID, ...], gas: ObjectID) -> int:
    """Merge every coin into the first; returns the merged balance. The gas coin may be
    the target but not merged away (it must survive to pay)."""
    target = coin(store, coins[0])
    total = target.coin_balance()
    for object_id in coins[1:]:
        if object_id == gas:
            raise ExecutionError(
                InvalidArguments("the gas coin cannot be merged away; list it first")
            )
        total += coin(store, object_id).coin_balance()
        store.delete(object_id)
    if total > MAX_BALANCE:
        raise ExecutionError(CoinBalanceOverflow(coins[0]))
    store.write(target.with_coin_balance(total))
    return total


def transfer_coin(store: TemporaryStore, kind: TransferCoin) -> None:
    object_id = kind.coin.object_id
    if kind.amount is None:
        obj = coin(store, object_id)
        store.write(obj.with_changes(owner=AddressOwner(kind.recipient)))
        return
    take(store, object_id, kind.amount)
    new_coin(store, kind.amount, kind.recipient)


def pay_coins(store: TemporaryStore, kind: PayCoins, gas: ObjectID) -> None:
    ids = tuple(ref.object_id for ref in kind.coins)
    total = merge_into_first(store, ids, gas)
    if kind.amounts is None:
        merged = store.read(ids[0])
        store.write(merged.with_changes(owner=AddressOwner(kind.recipients[0])))
        return
    needed = sum(kind.amounts)
    if needed > total:
        raise ExecutionError(InsufficientCoinBalance(ids[0], total, needed))
    take(store, ids[0], needed)
    for amount, recipient in zip(kind.amounts, kind.recipients, strict=True):
        new_coin(store, amount, recipient)


def merge_coins(store: TemporaryStore, kind: MergeCoins, gas: ObjectID) -> None:
    merge_into_first(store, tuple(ref.object_id for ref in kind.coins), gas)


def split_coin(store: TemporaryStore, kind: SplitCoin, sender: SomaAddress) -> None:
    object_id = kind.coin.object_id
    take(store, object_id, sum(kind.amounts))
    for amount in kind.amounts:
        new_coin(store, amount, sender)


def transfer_objects(store: TemporaryStore, kind: TransferObjects) -> None:
    for ref in kind.objects:
        obj = store.read(ref.object_id)
        store.write(obj.with_changes(owner=AddressOwner(kind.recipient)))
