"""A write-back cache in front of the perpetual object tables.

Execution reads the live version of every input and writes new versions at a high rate;
going to RocksDB for each would make storage the bottleneck. The cache keeps the outputs
of recently executed transactions in memory ("dirty") and writes them to the store in
one batch per flush, each transaction whole, in execution order. Reads see dirty entries
first, then a bounded LRU of clean objects, then the store. The owner-side indexes
(owned objects, coins largest first, balances) are read the same way: the store's
entries with the dirty changes laid over them (`soma.authority.paging`), so a page or a
balance includes everything executed, flushed or not.

Crash safety does not depend on the cache: a transaction whose outputs were still dirty
when the process died has no executed marker on disk, and the epoch store still holds it
as pending, so it is executed again after the restart (deterministically, to the same
effects). The bounds: at most `max_dirty` transactions wait for a flush (the driver
flushes earlier, after each commit), and at most `max_clean_objects` clean objects are
kept.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator, Sequence

from soma.authority.indexes import (
    Balance,
    CoinPosition,
    accumulate,
    coin_position,
    position_balance,
)
from soma.authority.paging import Page, first_page, merged
from soma.authority.store import AuthorityStore, TransactionOutputs
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import TransactionDigest
from soma.types.effects import TransactionEffects
from soma.types.object import Object, ObjectRef
from soma.types.transaction import SignedTransaction

DEFAULT_MAX_DIRTY = 10_000
DEFAULT_MAX_CLEAN_OBJECTS = 100_000

#: A deleted object in the dirty overlay.
_DELETED = None


class WritebackCache:
    def __init__(
        self,
        store: AuthorityStore,
        max_dirty: int = DEFAULT_MAX_DIRTY,
        max_clean_objects: int = DEFAULT_MAX_CLEAN_OBJECTS,
    ) -> None:
        if max_dirty < 1 or max_clean_objects < 1:
            raise ValueError("cache bounds must be positive")
        self.store = store
        self.max_dirty = max_dirty
        self.max_clean_objects = max_clean_objects
        self._dirty: list[TransactionOutputs] = []
        # Overlays of what the dirty outputs wrote: the live object per ID (None once
        # deleted), effects and transactions by digest, owner-index changes per address.
        self._dirty_live: dict[ObjectID, Object | None] = {}
        self._dirty_objects: dict[tuple[ObjectID, int], Object] = {}
        self._dirty_effects: dict[TransactionDigest, TransactionEffects] = {}
        self._dirty_transactions: dict[TransactionDigest, SignedTransaction] = {}
        self._dirty_owned: dict[SomaAddress, dict[ObjectID, ObjectRef | None]] = {}
        # Coin-index changes per owner (None once dropped), and balance deltas per owner
        # (total, number of coins) summed over the dirty transactions.
        self._dirty_coins: dict[SomaAddress, dict[CoinPosition, ObjectRef | None]] = {}
        self._dirty_balances: dict[SomaAddress, list[int]] = {}
        self._clean: collections.OrderedDict[ObjectID, Object] = collections.OrderedDict()
        self.flushes = 0
        #: Called with the transactions of each flush once they are durable (the epoch
        #: store then forgets them as pending).
        self.on_flush: Callable[[list[TransactionOutputs]], None] | None = None

    # --- reads ---------------------------------------------------------------------------

    def get_live_object(self, object_id: ObjectID) -> Object | None:
        if object_id in self._dirty_live:
            return self._dirty_live[object_id]
        obj = self._clean.get(object_id)
        if obj is not None:
            self._clean.move_to_end(object_id)
            return obj
        obj = self.store.get_live_object(object_id)
        if obj is not None:
            self._remember(obj)
        return obj

    def get_object_at(self, object_id: ObjectID, version: int) -> Object | None:
        obj = self._dirty_objects.get((object_id, version))
        if obj is not None:
            return obj
        live = self._clean.get(object_id)
        if live is not None and live.version == version:
            return live
        return self.store.get_object_at(object_id, version)

    def is_executed(self, digest: TransactionDigest) -> bool:
        return (
            digest in self._dirty_effects or self.store.executed_effects_digest(digest) is not None
        )

    def executed_many(self, digests: Sequence[TransactionDigest]) -> list[bool]:
        """`is_executed` for many digests, with one store read for those not dirty."""
        dirty = self._dirty_effects
        unknown = [d for d in digests if d not in dirty]
        stored = dict(zip(unknown, self.store.executed.multi_get(unknown), strict=True))
        return [d in dirty or stored[d] is not None for d in digests]

    def get_effects(self, digest: TransactionDigest) -> TransactionEffects | None:
        effects = self._dirty_effects.get(digest)
        return effects if effects is not None else self.store.get_effects(digest)

    def get_transaction(self, digest: TransactionDigest) -> SignedTransaction | None:
        tx = self._dirty_transactions.get(digest)
        return tx if tx is not None else self.store.get_transaction(digest)

    def owned_refs(self, owner: SomaAddress) -> list[ObjectRef]:
        """Every live object owned by `owner`, sorted by ID, dirty changes included (a
        scan of the owner's whole index: checks and tests; clients page)."""
        return [
            ref for _, ref in merged(self.store.owned_refs(owner), self._dirty_owned.get(owner))
        ]

    def owned_page(
        self, owner: SomaAddress, cursor: ObjectID | None, limit: int
    ) -> Page[ObjectRef, ObjectID]:
        """Up to `limit` objects owned by `owner`, by ID from `cursor` (inclusive)."""
        entries = merged(self.store.owned_refs(owner, cursor), self._dirty_owned.get(owner), cursor)
        taken, next_id = first_page(entries, limit)
        return Page([ref for _, ref in taken], next_id)

    def coin_page(
        self, owner: SomaAddress, cursor: tuple[int, ObjectID] | None, limit: int
    ) -> Page[tuple[ObjectRef, int], tuple[int, ObjectID]]:
        """Up to `limit` coins owned by `owner` with their balances, largest first (ties
        by ID), from the coin `cursor` = (balance, object ID) (inclusive)."""
        start = None if cursor is None else coin_position(*cursor)
        entries = merged(self.store.coins(owner, start), self._dirty_coins.get(owner), start)
        taken, after = first_page(entries, limit)
        coins = [(ref, position_balance(position)) for position, ref in taken]
        return Page(coins, None if after is None else (position_balance(after), after[1]))

    def balance(self, owner: SomaAddress) -> Balance:
        """`owner`'s total coin balance and number of coins: one store read, whatever
        the number of coins."""
        balance, coins = self.store.balance(owner)
        delta = self._dirty_balances.get(owner)
        if delta is not None:
            balance += delta[0]
            coins += delta[1]
        return balance, coins

    def live_refs(self) -> Iterator[ObjectRef]:
        """Every live object, dirty changes included (a full scan: checks and tests)."""
        refs = {ref.object_id: ref for ref in self.store.live_refs()}
        for object_id, obj in self._dirty_live.items():
            if obj is None:
                refs.pop(object_id, None)
            else:
                refs[object_id] = obj.reference()
        return iter([refs[k] for k in sorted(refs)])

    # --- writes --------------------------------------------------------------------------

    @property
    def dirty_count(self) -> int:
        return len(self._dirty)

    def write(self, outputs: TransactionOutputs) -> None:
        """Record one executed transaction; flushes when the dirty bound is reached."""
        self._dirty.append(outputs)
        for obj in outputs.written:
            self._dirty_live[obj.id] = obj
            self._dirty_objects[(obj.id, obj.version)] = obj
        for object_id in outputs.deleted:
            self._dirty_live[object_id] = _DELETED
        for address, object_id in outputs.owner_removals:
            self._dirty_owned.setdefault(address, {})[object_id] = None
        for address, ref in outputs.owner_inserts:
            self._dirty_owned.setdefault(address, {})[ref.object_id] = ref
        dirty_coins = self._dirty_coins
        for address, inverted, object_id in outputs.coin_removals:
            dirty_coins.setdefault(address, {})[(inverted, object_id)] = None
        for (address, inverted, object_id), ref in outputs.coin_inserts:
            dirty_coins.setdefault(address, {})[(inverted, object_id)] = ref
        accumulate(self._dirty_balances, outputs.balance_changes)
        self._dirty_effects[outputs.digest] = outputs.effects
        self._dirty_transactions[outputs.digest] = outputs.transaction
        if len(self._dirty) >= self.max_dirty:
            self.flush()

    def flush(self, sync: bool = False) -> list[TransactionOutputs]:
        """Write every dirty transaction to the store in one batch; returns them.

        Unsynced by default: the outputs survive the process being killed at once, and
        a power loss can only lose the last flushes whole (the write-ahead log keeps
        its order), which re-execution from the consensus replay restores. The caller
        syncs (`AuthorityStore.sync`) before it forgets anything that replay needs."""
        if not self._dirty:
            return []
        flushed = self._dirty
        self.store.write_outputs(flushed, sync=sync, balance_deltas=self._dirty_balances)
        for object_id, obj in self._dirty_live.items():
            if obj is None:
                self._clean.pop(object_id, None)
            else:
                self._remember(obj)
        self._dirty = []
        self._dirty_live = {}
        self._dirty_objects = {}
        self._dirty_effects = {}
        self._dirty_transactions = {}
        self._dirty_owned = {}
        self._dirty_coins = {}
        self._dirty_balances = {}
        self.flushes += 1
        if self.on_flush is not None:
            self.on_flush(flushed)
        return flushed

    def _remember(self, obj: Object) -> None:
        clean = self._clean
        clean[obj.id] = obj
        clean.move_to_end(obj.id)
        while len(clean) > self.max_clean_objects:
            clean.popitem(last=False)
