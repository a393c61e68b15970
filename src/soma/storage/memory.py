"""An in-memory engine with exactly the RocksDB engine's semantics, for tests.

Each table is a sorted key list plus a dict. Iterators capture both by reference, which
gives them the same implicit snapshot RocksDB iterators have without copying on every
`iterate` call: a write copies the table first (copy-on-write) if, and only if, a live
iterator still references the current key list and dict.

"Live" is tracked exactly: an iterator registers in its table's reader set when it is
created and leaves it when it is exhausted or garbage-collected. Copying merely because
*some* iterator was once created would make the simulator's constant "scan, then write"
pattern cost a full table copy per write (quadratic over a run). Batch operations are
validated as they are added, so applying a batch cannot fail halfway, as with RocksDB.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from typing import Literal

from soma.storage.engine import (
    Engine,
    EngineBatch,
    as_bytes,
    check_bytes,
    check_range,
    closed_error,
    consumed_error,
    empty_range,
    foreign_batch_error,
    validate_table_names,
)
from soma.types.error import UnknownTableError

_Op = (
    tuple[Literal["put"], str, bytes, bytes]
    | tuple[Literal["delete"], str, bytes]
    | tuple[Literal["delete_range"], str, bytes, bytes]
)


class _MemTable:
    """One table's state.

    `readers` holds the ids of the live iterators that captured the current `keys` and
    `values`; while it is non-empty those two must not be mutated in place. A copy
    starts a new version with a fresh, empty reader set, and the iterators keep
    (and later leave) the old set along with the old version.
    """

    __slots__ = ("copies", "keys", "readers", "values")

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.values: dict[bytes, bytes] = {}
        self.readers: set[int] = set()
        self.copies = 0

    def unshare(self) -> None:
        """Called before every in-place mutation: copy only if a live reader needs the
        current version to stay as it is."""
        if self.readers:
            self.keys = list(self.keys)
            self.values = dict(self.values)
            self.readers = set()
            self.copies += 1

    def put(self, key: bytes, value: bytes) -> None:
        self.unshare()
        if key not in self.values:
            keys = self.keys
            if not keys or keys[-1] < key:
                keys.append(key)
            else:
                keys.insert(bisect_left(keys, key), key)
        self.values[key] = value

    def delete(self, key: bytes) -> None:
        if key not in self.values:
            return
        self.unshare()
        del self.values[key]
        keys = self.keys
        del keys[bisect_left(keys, key)]

    def delete_range(self, start: bytes, end: bytes) -> None:
        lo = bisect_left(self.keys, start)
        hi = bisect_left(self.keys, end)
        if lo >= hi:
            return
        self.unshare()
        values = self.values
        for key in self.keys[lo:hi]:
            del values[key]
        del self.keys[lo:hi]


class MemoryBatch(EngineBatch):
    """Operations recorded as tuples and replayed by `MemoryEngine.write`."""

    __slots__ = ("_consumed", "_engine", "ops")

    def __init__(self, engine: MemoryEngine) -> None:
        self._engine = engine
        self._consumed = False
        self.ops: list[_Op] = []

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._engine._table(table)
        self.ops.append(("put", table, as_bytes("key", key), as_bytes("value", value)))

    def delete(self, table: str, key: bytes) -> None:
        self._engine._table(table)
        self.ops.append(("delete", table, as_bytes("key", key)))

    def delete_range(self, table: str, start: bytes, end: bytes) -> None:
        self._engine._table(table)
        check_range(start, end)
        self.ops.append(("delete_range", table, bytes(start), bytes(end)))

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def consumed(self) -> bool:
        return self._consumed


class MemoryEngine(Engine):
    """The test engine. `sync` is accepted and ignored: there is nothing to make durable."""

    def __init__(self, tables: Sequence[str]) -> None:
        self._names = validate_table_names(tables)
        self._tables: dict[str, _MemTable] = {name: _MemTable() for name in self._names}
        self._closed = False
        self._lock = threading.Lock()

    @property
    def tables(self) -> tuple[str, ...]:
        return self._names

    @property
    def snapshot_copies(self) -> int:
        """How many times a write had to copy a table because a live iterator still
        referenced it (0 after `close()`). Exposed so tests can check structurally that
        copy-on-write happens only when a snapshot actually needs protecting."""
        return sum(mem.copies for mem in self._tables.values())

    @property
    def closed(self) -> bool:
        return self._closed

    def _table(self, table: str) -> _MemTable:
        try:
            return self._tables[table]
        except KeyError:
            if self._closed:
                raise closed_error() from None
            raise UnknownTableError(f"unknown table {table!r}") from None

    def get(self, table: str, key: bytes) -> bytes | None:
        values = self._table(table).values
        check_bytes("key", key)
        return values.get(key)

    def multi_get(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        values = self._table(table).values
        for key in keys:
            check_bytes("key", key)
        return [values.get(key) for key in keys]

    def contains(self, table: str, key: bytes) -> bool:
        values = self._table(table).values
        check_bytes("key", key)
        return key in values

    def iterate(
        self,
        table: str,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        mem = self._table(table)
        if start is not None:
            check_bytes("start key", start)
        if end is not None:
            check_bytes("end key", end)
        if empty_range(start, end, reverse):
            return _MemoryIterator(self, _NO_KEYS, _NO_VALUES, 0, 0, reverse, None)
        with self._lock:
            # Capture, bound and register atomically, so no write can slip in between
            # taking the snapshot and protecting it.
            keys, values = mem.keys, mem.values
            if reverse:
                pos = (len(keys) if start is None else bisect_right(keys, start)) - 1
                stop = (0 if end is None else bisect_right(keys, end)) - 1
                live = pos > stop
            else:
                pos = 0 if start is None else bisect_left(keys, start)
                stop = len(keys) if end is None else bisect_left(keys, end)
                live = pos < stop
            # An iterator with nothing to yield never reads the snapshot: not registering
            # it spares the next write a copy.
            return _MemoryIterator(
                self, keys, values, pos, stop, reverse, mem.readers if live else None
            )

    def put(self, table: str, key: bytes, value: bytes, *, sync: bool) -> None:
        mem = self._table(table)
        key, value = as_bytes("key", key), as_bytes("value", value)
        with self._lock:
            mem.put(key, value)

    def delete(self, table: str, key: bytes, *, sync: bool) -> None:
        mem = self._table(table)
        check_bytes("key", key)
        with self._lock:
            mem.delete(key)

    def batch(self) -> MemoryBatch:
        if self._closed:
            raise closed_error()
        return MemoryBatch(self)

    def sync(self) -> None:
        if self._closed:
            raise closed_error()

    def write(self, batch: EngineBatch, *, sync: bool) -> None:
        if not isinstance(batch, MemoryBatch) or batch._engine is not self:
            raise foreign_batch_error()
        if batch._consumed:
            raise consumed_error()
        if self._closed:
            raise closed_error()
        tables = self._tables
        with self._lock:
            batch._consumed = True
            for op in batch.ops:
                if op[0] == "put":
                    tables[op[1]].put(op[2], op[3])
                elif op[0] == "delete":
                    tables[op[1]].delete(op[2])
                else:
                    tables[op[1]].delete_range(op[2], op[3])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._tables = {}


_NO_KEYS: list[bytes] = []
_NO_VALUES: dict[bytes, bytes] = {}


class _MemoryIterator(Iterator[tuple[bytes, bytes]]):
    """Walks a captured key list from `pos` towards `stop`.

    While registered in `readers` (its table's reader set when it was created) the
    captured list and dict are never mutated. It leaves the set, and drops its
    references to the snapshot so an old version can be freed, as soon as it is
    exhausted or garbage-collected.
    """

    __slots__ = ("_engine", "_keys", "_pos", "_readers", "_step", "_stop", "_values")

    def __init__(
        self,
        engine: MemoryEngine,
        keys: list[bytes],
        values: dict[bytes, bytes],
        pos: int,
        stop: int,
        reverse: bool,
        readers: set[int] | None,
    ) -> None:
        self._readers = readers  # first, so __del__ is safe whatever happens below
        self._engine = engine
        self._keys = keys
        self._values = values
        self._pos = pos
        self._stop = stop
        self._step = -1 if reverse else 1
        if readers is not None:
            readers.add(id(self))

    def _release(self) -> None:
        # No engine lock here: __del__ can run inside a write that holds it. A single
        # set.discard is atomic, and leaving the set early is never unsafe for the
        # iterator that leaves, because it reads nothing afterwards.
        readers = self._readers
        if readers is not None:
            self._readers = None
            readers.discard(id(self))
            self._keys = _NO_KEYS
            self._values = _NO_VALUES

    def __del__(self) -> None:
        self._release()

    def __iter__(self) -> _MemoryIterator:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        if self._engine._closed:
            raise closed_error()
        pos = self._pos
        if (pos >= self._stop) if self._step > 0 else (pos <= self._stop):
            self._release()
            raise StopIteration
        self._pos = pos + self._step
        key = self._keys[pos]
        return key, self._values[key]
