"""TransactionManager: releases ordered transactions for execution as soon as doing so
cannot change the result of executing them one by one in commit order.

Each transaction touches a set of objects: its inputs (owned and shared) and the objects
it may create (their IDs derive from its digest, so they are known before it runs). Per
object, the manager keeps the transactions touching it in commit order; a transaction is
released when it heads the queue of every object it touches, that is, when every earlier
transaction that could change one of its inputs has executed. Its inputs then exist at
the versions it names, or never will at this point of the order, and execution decides
deterministically. Transactions on disjoint objects do not wait for each other: a coin
transfer is not held up behind a slow system-state queue or an unrelated stalled input.

The epoch change is a barrier: it waits for every transaction ordered before it (it
pays out the fees all of them charged), so it touches every object queued when it comes.

Sans-IO: the execution driver feeds it ordered transactions, takes released ones, and
reports each executed one.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Iterable

from soma.authority.epoch_store import PendingTransaction
from soma.authority.execution.executor import created_object_count
from soma.types.base import ObjectID
from soma.types.transaction import ChangeEpoch, ImmOrOwnedInput, SharedInput

Key = tuple[int, int]


def touched_objects(item: PendingTransaction) -> list[ObjectID]:
    """Every object the transaction may read or write, without repeats."""
    data = item.transaction.data
    ids: dict[ObjectID, None] = {}
    for entry in data.input_objects():
        if isinstance(entry, ImmOrOwnedInput):
            ids[entry.object_ref.object_id] = None
        elif isinstance(entry, SharedInput):
            ids[entry.object_id] = None
    digest = item.transaction.digest()
    for index in range(created_object_count(data.kind)):
        ids[ObjectID.derive(digest, index)] = None
    return list(ids)


class TransactionManager:
    def __init__(self) -> None:
        self._queues: dict[ObjectID, collections.deque[Key]] = {}
        self._items: dict[Key, PendingTransaction] = {}
        self._touches: dict[Key, list[ObjectID]] = {}
        self._waits: dict[Key, int] = {}
        self._ready: list[Key] = []

    def __len__(self) -> int:
        """Transactions enqueued and not yet reported executed."""
        return len(self._items)

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def contains(self, key: Key) -> bool:
        return key in self._items

    def enqueue(self, items: Iterable[PendingTransaction]) -> None:
        """Add transactions; they must come in commit order (and each only once)."""
        for item in items:
            key = item.key
            if key in self._items:
                continue
            touched = touched_objects(item)
            if isinstance(item.transaction.data.kind, ChangeEpoch):
                touched = list(dict.fromkeys([*touched, *self._queues]))
            waits = 0
            for object_id in touched:
                queue = self._queues.get(object_id)
                if queue is None:
                    queue = self._queues[object_id] = collections.deque()
                if queue:
                    waits += 1
                queue.append(key)
            self._items[key] = item
            self._touches[key] = touched
            self._waits[key] = waits
            if waits == 0:
                heapq.heappush(self._ready, key)

    def take_ready(self, limit: int | None = None) -> list[PendingTransaction]:
        """Released transactions, earliest in commit order first."""
        out: list[PendingTransaction] = []
        while self._ready and (limit is None or len(out) < limit):
            out.append(self._items[heapq.heappop(self._ready)])
        return out

    def executed(self, item: PendingTransaction) -> None:
        """`item` ran (or was found already run): release whoever waited on it."""
        key = item.key
        if self._items.pop(key, None) is None:
            return
        del self._waits[key]
        for object_id in self._touches.pop(key):
            queue = self._queues[object_id]
            if not queue or queue[0] != key:
                raise RuntimeError(f"transaction {key} executed before its turn on {object_id}")
            queue.popleft()
            if not queue:
                del self._queues[object_id]
                continue
            successor = queue[0]
            self._waits[successor] -= 1
            if self._waits[successor] == 0:
                heapq.heappush(self._ready, successor)
