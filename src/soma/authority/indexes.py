"""Owner-side indexes: each address's coin balance, and its coins largest first.

Reading a balance must not read every object an address owns (10,000 coins would be
10,000 reads), and a wallet picking coins to pay with wants the largest first. So the
perpetual store keeps, next to the owner index, two indexes over the coins owned by an
address (`AddressOwner`; shared and immutable coins belong to nobody's balance):

- the balance index: address -> (total balance of its coins as a u128, number of coins);
- the coin index: (address, 2^64-1-balance, object ID) -> ObjectRef. The balance is
  inverted so that a forward scan from an address's first key yields its coins largest
  first, ties by object ID ascending.

Execution computes each transaction's changes here (`CoinIndexDelta`, fed by
`TemporaryStore.finish` with each input as loaded and each output), and the store
applies them in the same batch as the transaction's objects: the indexes can never
disagree with the objects, whatever a crash interrupts. This module holds the key
layouts and the logic, and no I/O: the tables are the store's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from soma.storage import U64_BE, FixedBytesCodec, FixedWidthCodec, TupleCodec, UIntCodec
from soma.types.base import ObjectID, SomaAddress
from soma.types.object import CoinData, Object, ObjectRef

#: The largest coin balance; a coin-index key holds `MAX_U64 - balance`.
MAX_U64 = 2**64 - 1

#: A coin-index key: (owner, inverted balance, object ID).
CoinKey = tuple[SomaAddress, int, ObjectID]
#: A coin-index key within one owner's range: (inverted balance, object ID).
CoinPosition = tuple[int, ObjectID]
#: One transaction's change to an address's balance entry: (owner, balance delta, coin
#: count delta).
BalanceChange = tuple[SomaAddress, int, int]
#: A balance-index entry: (total balance, number of coins).
Balance = tuple[int, int]


class _CoinKeyCodec(TupleCodec):
    """A coin-index key, (owner, 2^64-1-balance, object ID), as its 72 bytes. Packed
    directly when the parts are what the store writes: a transfer's flush encodes three
    to five of them, and the generic tuple path costs several times as much."""

    __slots__ = ()

    def encode(self, value: tuple[Any, ...]) -> bytes:
        if type(value) is tuple and len(value) == 3:
            owner, inverted, object_id = value
            if (
                type(owner) is SomaAddress
                and type(object_id) is ObjectID
                and type(inverted) is int
                and 0 <= inverted <= MAX_U64
            ):
                return owner + inverted.to_bytes(8, "big") + object_id
        return super().encode(value)  # the general case, or its typed error


class _BalanceCodec(TupleCodec):
    """A balance-index entry, (u128 total, u64 coins) big-endian: read back directly,
    since a flush reads one per owner its transactions touched."""

    __slots__ = ()

    def decode(self, data: bytes) -> tuple[Any, ...]:
        if len(data) == 24:
            return (int.from_bytes(data[:16], "big"), int.from_bytes(data[16:], "big"))
        return super().decode(data)  # its typed error


#: Storage codecs of the coin-index key and of a balance-index entry (the key parts
#: are fixed-width and big-endian, so byte order is the order described above).
COIN_KEY_CODEC = cast(
    FixedWidthCodec[CoinKey],
    _CoinKeyCodec(FixedBytesCodec(32, SomaAddress), U64_BE, FixedBytesCodec(32, ObjectID)),
)
BALANCE_CODEC = cast(FixedWidthCodec[Balance], _BalanceCodec(UIntCodec(16), U64_BE))


class IndexCorruptionError(Exception):
    """Applying changes would make a balance or a coin count negative: the index and the
    objects disagree. A bug or a damaged store, never a user's doing."""


def coin_position(balance: int, object_id: ObjectID) -> CoinPosition:
    """Where a coin of `balance` sorts among its owner's coins."""
    return (MAX_U64 - balance, object_id)


def position_balance(position: CoinPosition) -> int:
    return MAX_U64 - position[0]


def _coin_balance(obj: Object) -> int | None:
    data = obj.data()
    return data.balance if type(data) is CoinData else None


class CoinIndexDelta:
    """The coin- and balance-index changes of one transaction, object by object.

    Each object it wrote is reported with its state before (the input as loaded, None
    if created) and after; each object it deleted with its state before. A coin whose
    owner and balance did not change keeps its key: only its ObjectRef moves on. The
    balance changes are kept as they come (a transfer gives its sender -old and +new),
    since the store and the cache sum them per flush anyway."""

    __slots__ = ("balance_changes", "inserts", "removals")

    def __init__(self) -> None:
        self.removals: list[CoinKey] = []
        self.inserts: list[tuple[CoinKey, ObjectRef]] = []
        self.balance_changes: list[BalanceChange] = []

    def written(
        self,
        old_owner: SomaAddress | None,
        before: Object | None,
        new_owner: SomaAddress | None,
        after: Object,
        ref: ObjectRef | None,
    ) -> None:
        """`after` was written at `ref` (given when `new_owner` is), from `before`;
        `old_owner`/`new_owner` are the addresses owning them, if any."""
        old_key: CoinKey | None = None
        if old_owner is not None and before is not None:
            data = before.data()
            if type(data) is CoinData:
                old_key = (old_owner, MAX_U64 - data.balance, before.id)
                self.balance_changes.append((old_owner, -data.balance, -1))
        if new_owner is not None and ref is not None:
            data = after.data()
            if type(data) is CoinData:
                key = (new_owner, MAX_U64 - data.balance, after.id)
                self.inserts.append((key, ref))
                self.balance_changes.append((new_owner, data.balance, 1))
                if key == old_key:
                    return
        if old_key is not None:
            self.removals.append(old_key)

    def deleted(self, old_owner: SomaAddress, before: Object) -> None:
        """`before`, owned by `old_owner`, was deleted."""
        data = before.data()
        if type(data) is CoinData:
            self.removals.append((old_owner, MAX_U64 - data.balance, before.id))
            self.balance_changes.append((old_owner, -data.balance, -1))


def _add(deltas: dict[SomaAddress, list[int]], owner: SomaAddress, amount: int, count: int) -> None:
    entry = deltas.get(owner)
    if entry is None:
        deltas[owner] = [amount, count]
    else:
        entry[0] += amount
        entry[1] += count


def accumulate(deltas: dict[SomaAddress, list[int]], changes: Iterable[BalanceChange]) -> None:
    """Add one transaction's balance changes to `deltas` (per owner: [total, coins])."""
    for owner, amount, count in changes:
        _add(deltas, owner, amount, count)


def sum_balance_changes(
    changes: Iterable[Iterable[BalanceChange]],
) -> dict[SomaAddress, list[int]]:
    """The changes of many transactions summed per owner (zero sums kept: `add_deltas`
    skips them)."""
    deltas: dict[SomaAddress, list[int]] = {}
    for group in changes:
        accumulate(deltas, group)
    return deltas


def add_deltas(
    owners: Sequence[SomaAddress],
    stored: Sequence[Balance | None],
    deltas: Mapping[SomaAddress, Sequence[int]],
) -> list[tuple[SomaAddress, Balance | None]]:
    """Each owner's entry after its delta: None once it has no coin left (the entry is
    dropped). Raises `IndexCorruptionError` for a negative total."""
    out: list[tuple[SomaAddress, Balance | None]] = []
    for owner, entry in zip(owners, stored, strict=True):
        amount, count = deltas[owner]
        if not amount and not count:
            continue
        balance, coins = entry if entry is not None else (0, 0)
        balance += amount
        coins += count
        if balance < 0 or coins < 0 or (coins == 0 and balance != 0):
            raise IndexCorruptionError(
                f"balance index of {owner}: {balance} in {coins} coins after a change"
            )
        out.append((owner, (balance, coins) if coins else None))
    return out


def coin_index_entries(
    owned: Iterable[tuple[SomaAddress, ObjectRef, Object]],
    totals: dict[SomaAddress, list[int]],
) -> list[tuple[CoinKey, ObjectRef]]:
    """The coin-index entries of owned objects, built from scratch (the backfill of a
    store made before the indexes existed); their balances are added to `totals`."""
    entries: list[tuple[CoinKey, ObjectRef]] = []
    for owner, ref, obj in owned:
        balance = _coin_balance(obj)
        if balance is not None:
            entries.append(((owner, MAX_U64 - balance, ref.object_id), ref))
            _add(totals, owner, balance, 1)
    return entries
