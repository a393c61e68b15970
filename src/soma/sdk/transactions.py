"""Building and signing a user's transactions, and checking its arguments first.

Arguments are checked before any coin is listed or merged, so a bad amount is an
immediate error rather than a refusal after merges already ran; the transaction itself
is checked as validators check it (`check_well_formed`) before it is signed.
"""

from __future__ import annotations

from collections.abc import Sequence

from soma.sdk.coins import Coin
from soma.sdk.errors import ApiError
from soma.types.base import SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.error import SomaError
from soma.types.object import ObjectRef
from soma.types.transaction import (
    MAX_RECIPIENTS,
    PayCoins,
    SignedTransaction,
    TransactionData,
    TransactionKind,
    TransferCoin,
)

#: Amounts are u64 on the wire.
MAX_AMOUNT = 2**64 - 1


def sign(
    key: AccountKeyPair, kind: TransactionKind, gas: ObjectRef, gas_budget: int
) -> SignedTransaction:
    """`kind` sent by `key`'s address with `gas` paying, signed; refused here (with the
    validators' own code) if it is malformed."""
    data = TransactionData(kind, key.public_key.to_address(), gas, gas_budget, None)
    try:
        data.check_well_formed()
        return SignedTransaction.sign(data, key)
    except SomaError as e:
        raise ApiError(e.code, e.message) from None


def check_amounts(amounts: Sequence[int], recipients: int | None = None) -> tuple[int, ...]:
    """The amounts as a tuple; each positive and a u64, at most MAX_RECIPIENTS of them
    and, for a payment, one per recipient."""
    values = tuple(amounts)
    if not values or len(values) > MAX_RECIPIENTS:
        raise ApiError("INVALID_AMOUNT", f"give 1 to {MAX_RECIPIENTS} amounts")
    if recipients is not None and recipients != len(values):
        raise ApiError(
            "INVALID_AMOUNT", f"{len(values)} amounts for {recipients} recipients: give one each"
        )
    for amount in values:
        if not 0 < amount <= MAX_AMOUNT:
            raise ApiError("INVALID_AMOUNT", f"amount {amount} is not between 1 and 2^64 - 1")
    return values


def payment_kind(
    coins: Sequence[Coin],
    amounts: tuple[int, ...],
    recipients: tuple[SomaAddress, ...],
    transfer: bool,
) -> TransactionKind:
    """A transfer from one coin is a `TransferCoin` (it takes no merge); otherwise a
    `PayCoins` merging `coins` into the first (the largest, which pays the gas)."""
    if transfer and len(coins) == 1:
        return TransferCoin(coins[0].ref, amounts[0], recipients[0])
    return PayCoins(tuple(c.ref for c in coins), amounts, recipients)
