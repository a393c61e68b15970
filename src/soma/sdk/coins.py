"""Coin selection: which of an address's coins a payment spends, which pays the gas,
and how coins are merged when there are more than one transaction may take.

Pure functions of the coins (sans-IO), so the rules are tested without a network and
the sync and async clients apply the same ones. Coins are always handled largest first:
the largest coin pays the gas (the fee comes out of it first), and the fewest coins
cover an amount, which keeps the transaction under the input limit and spends the
fewest objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from soma.sdk.errors import ApiError
from soma.types.base import ObjectID, SomaAddress
from soma.types.object import ObjectRef
from soma.types.transaction import MAX_INPUT_OBJECTS

#: The gas budget the SDK offers, as a multiple of the network's fee: room for a fee
#: rise within the epoch, never more than the gas coin holds (validators refuse a gas
#: coin holding less than the budget).
GAS_BUDGET_FEES = 10


@dataclass(frozen=True, slots=True)
class Coin:
    """A coin as the SDK selects it: its reference (what a transaction names) and its
    balance (what selection needs)."""

    ref: ObjectRef
    balance: int

    @property
    def object_id(self) -> ObjectID:
        return self.ref.object_id

    def to_dict(self) -> dict[str, Any]:
        """The API's JSON form of a coin (for printing it as JSON)."""
        return {
            "object_id": str(self.ref.object_id),
            "version": self.ref.version,
            "digest": str(self.ref.digest),
            "balance": self.balance,
        }


def largest_first(coins: Iterable[Coin]) -> list[Coin]:
    """Coins by decreasing balance (ties by object ID, so the order is deterministic)."""
    return sorted(coins, key=lambda c: (-c.balance, c.object_id))


def can_pay_gas(fee: int, coin: Coin) -> bool:
    """Whether `coin` can pay for a transaction: hold the fee, and a positive budget."""
    return coin.balance >= max(fee, 1)


def gas_budget(fee: int, gas: Coin) -> int:
    """The budget a transaction paid by `gas` offers: `GAS_BUDGET_FEES` times the fee,
    but never more than the coin holds (it must hold at least the budget) and never
    below the fee (the budget must cover it). A coin holding less than the fee cannot
    pay for anything: that is an error here rather than a refusal by the validators."""
    if not can_pay_gas(fee, gas):
        raise ApiError(
            "INSUFFICIENT_GAS",
            f"coin {gas.object_id} holds {gas.balance}, less than the fee {fee}: "
            "it cannot pay for gas",
        )
    return max(fee, 1, min(GAS_BUDGET_FEES * fee, gas.balance))


def merge_group_sizes(
    count: int, limit: int = MAX_INPUT_OBJECTS, leaders: int | None = None
) -> list[int]:
    """The sizes of the merges one round runs (independently, so concurrently) to leave
    at most `limit` of `count` coins; [] when they already fit.

    A MergeCoins of k coins removes k - 1 of them, so the fewest transactions that get
    `count` down to `limit` remove exactly `count - limit` coins: full groups of `limit`
    and at most one smaller. When even `limit` full groups cannot get there (more than
    about limit² coins), or fewer than the groups needed have a coin that can pay the
    fee (`leaders`), the round runs full groups only, and another round follows on
    their results; every merge but one is still full, so the count stays the fewest."""
    if limit < 2:
        raise ValueError("a merge takes at least two coins")
    if count <= limit:
        return []
    excess = count - limit
    groups = -(-excess // (limit - 1))
    if groups > limit:
        groups = count // limit
        excess = groups * (limit - 1)
    if leaders is not None and groups > leaders:
        groups = leaders
        excess = groups * (limit - 1)
    sizes = []
    while excess > 0:
        merged = min(limit - 1, excess)
        sizes.append(merged + 1)
        excess -= merged
    return sizes


def merge_round(
    coins: Sequence[Coin], limit: int = MAX_INPUT_OBJECTS, fee: int = 0
) -> list[list[Coin]]:
    """The groups of one merge round over `coins` (largest first), each with its
    largest coin first: it is the merge target and pays the gas, so the round's gas
    coins are the largest coins (only coins that can pay the fee lead a group), and
    the smallest coins are the ones merged away. Coins in no group stay as they are."""
    leaders = sum(1 for c in coins if can_pay_gas(fee, c))
    sizes = merge_group_sizes(len(coins), limit, leaders)
    if len(coins) > limit and not sizes:
        raise ApiError(
            "INSUFFICIENT_GAS",
            f"{len(coins)} coins to merge, and none holds the fee {fee} to pay for a merge",
        )
    merged_away = sum(size - 1 for size in sizes)
    members = coins[len(coins) - merged_away :]
    groups = []
    start = 0
    for leader, size in zip(coins, sizes, strict=False):
        groups.append([leader, *members[start : start + size - 1]])
        start += size - 1
    return groups


def merge_transactions(count: int, limit: int = MAX_INPUT_OBJECTS) -> int:
    """How many merges bring `count` coins within `limit` (each costs a fee)."""
    total = 0
    while sizes := merge_group_sizes(count, limit):
        total += len(sizes)
        count -= sum(size - 1 for size in sizes)
    return total


class CoinPicker:
    """Takes coins, largest first, until they cover `amount` plus the fees: the
    payment's own, and one per merge that the chosen coins need first when they are
    more than one transaction takes. Fed a page at a time, so a payment lists only as
    many pages of coins as it spends."""

    def __init__(self, amount: int, fee: int, limit: int = MAX_INPUT_OBJECTS) -> None:
        self.amount = amount
        self.fee = fee
        self.limit = limit
        self.chosen: list[Coin] = []
        self.total = 0
        self.covered = False

    def needed(self) -> int:
        """What the chosen coins must hold: the amount, the payment's fee and the fees
        of the merges they need."""
        return self.amount + self.fee * (1 + merge_transactions(len(self.chosen), self.limit))

    def offer(self, coins: Iterable[Coin]) -> bool:
        """Take coins (largest first) until covered; whether they now cover."""
        for coin in coins:
            if self.covered:
                break
            self.chosen.append(coin)
            self.total += coin.balance
            self.covered = self.total >= self.needed()
        return self.covered

    def shortfall(self, address: SomaAddress) -> ApiError:
        """The error when every coin was offered and they do not cover."""
        count = len(self.chosen)
        return ApiError(
            "INSUFFICIENT_BALANCE",
            f"{address} holds {self.total} in {count} coin{'' if count == 1 else 's'}; "
            f"{self.amount} + fee {self.needed() - self.amount} needed",
        )


def select_coins(
    coins: Sequence[Coin],
    amount: int,
    fee: int,
    address: SomaAddress,
    limit: int = MAX_INPUT_OBJECTS,
) -> list[Coin]:
    """The coins (largest first) a payment of `amount` spends; INSUFFICIENT_BALANCE if
    all of them do not cover it. More than `limit` of them means merges first."""
    picker = CoinPicker(amount, fee, limit)
    if not picker.offer(largest_first(coins)):
        raise picker.shortfall(address)
    return picker.chosen
