"""What the owner-side indexes must hold, computed the slow way: a full scan of the live
objects. Tests compare the indexes, the store's tables and paged reads with it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from soma.authority.indexes import MAX_U64
from soma.authority.paging import Page
from soma.types.base import ObjectID, SomaAddress
from soma.types.object import AddressOwner, Object, ObjectRef

C = TypeVar("C")
T = TypeVar("T")


class LiveReader(Protocol):
    def live_refs(self) -> Iterable[ObjectRef]: ...

    def get_live_object(self, object_id: ObjectID) -> Object | None: ...


@dataclasses.dataclass
class Expected:
    #: Per owner: its objects by ID.
    owned: dict[SomaAddress, list[ObjectRef]]
    #: Per owner: (coin, balance), largest first, ties by ID.
    coins: dict[SomaAddress, list[tuple[ObjectRef, int]]]

    def balance(self, owner: SomaAddress) -> tuple[int, int]:
        coins = self.coins.get(owner, [])
        return sum(b for _, b in coins), len(coins)

    def balance_table(self) -> dict[SomaAddress, tuple[int, int]]:
        """The balance index as it must be stored: owners with at least one coin."""
        return {owner: self.balance(owner) for owner, coins in self.coins.items() if coins}

    def coin_table(self) -> list[tuple[tuple[SomaAddress, int, ObjectID], ObjectRef]]:
        """The coin index as it must be stored, in key order."""
        rows = [
            ((owner, MAX_U64 - balance, ref.object_id), ref)
            for owner, coins in self.coins.items()
            for ref, balance in coins
        ]
        return sorted(rows, key=lambda row: row[0])

    def owner_table(self) -> list[tuple[tuple[SomaAddress, ObjectID], ObjectRef]]:
        rows = [((owner, ref.object_id), ref) for owner, refs in self.owned.items() for ref in refs]
        return sorted(rows, key=lambda row: row[0])


def scan(reader: LiveReader) -> Expected:
    owned: dict[SomaAddress, list[ObjectRef]] = {}
    coins: dict[SomaAddress, list[tuple[ObjectRef, int]]] = {}
    for ref in reader.live_refs():
        obj = reader.get_live_object(ref.object_id)
        assert obj is not None
        if not isinstance(obj.owner, AddressOwner):
            continue
        owner = obj.owner.address
        owned.setdefault(owner, []).append(obj.reference())
        if obj.is_coin():
            coins.setdefault(owner, []).append((obj.reference(), obj.coin_balance()))
    for refs in owned.values():
        refs.sort(key=lambda r: r.object_id)
    for entries in coins.values():
        entries.sort(key=lambda e: (-e[1], e[0].object_id))
    return Expected(owned, coins)


def page_through(
    read: Callable[[C | None, int], Page[T, C]], limits: Callable[[], int], start: C | None = None
) -> list[T]:
    """Every entry from `start`, read a page at a time with the limits `limits` gives;
    each page but the last is full, and the next cursor is the entry after it."""
    out: list[T] = []
    cursor = start
    while True:
        limit = limits()
        page = read(cursor, limit)
        out.extend(page.items)
        if page.next_cursor is None:
            assert len(page.items) <= limit
            return out
        assert len(page.items) == limit
        cursor = page.next_cursor
