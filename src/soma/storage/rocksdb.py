"""The RocksDB engine (via `rocksdict` in raw mode): the embedded default backend.

Raw mode stores keys and values as the exact bytes given, so RocksDB's bytewise
comparator orders keys exactly as the key codecs intend. This module also hides the
`rocksdict` (0.3.x) behaviours that would otherwise leak to callers:

* it raises bare `Exception`s (and `KeyError`/`ValueError` for non-bytes keys); every one
  is translated into a typed `StorageError` here;
* column-family handles and live iterators keep the database (and its LOCK file) alive
  after `Rdict.close()`, so `close()` drops every handle and detaches every iterator;
* a `WriteBatch` can be written once; `write` enforces that with a typed error;
* an iterator reads its bound from the caller's `bytes` without owning it, so the bounds
  are kept alive by the wrapping iterator (a freed bound made scans overrun their end);
* `ReadOptions.set_iterate_lower_bound` sets the upper bound, so backward scans check
  their end bound in Python instead.

Point reads call straight into the column family with no extra layers, so a `get`
costs about as much as `rocksdict` itself (well under the few-µs budget).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence
from typing import cast

import rocksdict

from soma.storage.engine import (
    Engine,
    EngineBatch,
    check_range,
    closed_error,
    consumed_error,
    empty_range,
    foreign_batch_error,
    validate_table_names,
)
from soma.types.error import (
    StorageEncodeError,
    StorageEngineError,
    StorageError,
    StorageOpenError,
    UnknownTableError,
)

_DEFAULT_CF = "default"
_EXHAUSTED: Iterator[tuple[bytes, bytes]] = iter(())


def _options() -> rocksdict.Options:
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    return opts


def _write_options(sync: bool) -> rocksdict.WriteOptions:
    opts = rocksdict.WriteOptions()
    opts.sync = sync
    return opts


class RocksBatch(EngineBatch):
    """A `rocksdict.WriteBatch` filled directly, so `write` costs no extra pass."""

    __slots__ = ("_batch", "_consumed", "_engine")

    def __init__(self, engine: RocksDBEngine) -> None:
        self._engine = engine
        self._batch = rocksdict.WriteBatch(raw_mode=True)
        self._consumed = False

    def put(self, table: str, key: bytes, value: bytes) -> None:
        engine = self._engine
        try:
            self._batch.put(key, value, engine._handles[table])
        except Exception as exc:
            raise engine._error(exc, table, "batch put", key, value) from exc

    def delete(self, table: str, key: bytes) -> None:
        engine = self._engine
        try:
            self._batch.delete(key, engine._handles[table])
        except Exception as exc:
            raise engine._error(exc, table, "batch delete", key) from exc

    def delete_range(self, table: str, start: bytes, end: bytes) -> None:
        check_range(start, end)
        engine = self._engine
        try:
            self._batch.delete_range(start, end, engine._handles[table])
        except Exception as exc:
            raise engine._error(exc, table, "batch delete_range", start, end) from exc

    def __len__(self) -> int:
        return self._batch.len()

    @property
    def consumed(self) -> bool:
        return self._consumed


class RocksDBEngine(Engine):
    """A RocksDB database at `path` with one column family per table.

    Missing column families are created. Column families present on disk but not in
    `tables` are opened too (RocksDB refuses to open a database otherwise) but are not
    accessible, so a subsystem can stop declaring a table without losing the database.
    """

    def __init__(self, path: str | os.PathLike[str], tables: Sequence[str]) -> None:
        self._names = validate_table_names(tables)
        self._path = os.fspath(path)
        self._closed = False
        self._iterators: weakref.WeakSet[_RocksIterator] = weakref.WeakSet()
        self._sync = _write_options(True)
        self._nosync = _write_options(False)
        self._db = self._open()
        try:
            self._cfs: dict[str, rocksdict.Rdict] = {
                name: self._db.get_column_family(name) for name in self._names
            }
            self._handles: dict[str, rocksdict.ColumnFamily] = {
                name: self._db.get_column_family_handle(name) for name in self._names
            }
        except Exception as exc:
            self._cfs, self._handles = {}, {}
            self._db.close()
            raise StorageOpenError(f"cannot open tables of {self._path}: {exc}") from exc

    def _open(self) -> rocksdict.Rdict:
        path = self._path
        try:
            os.makedirs(path, exist_ok=True)
            names = set(self._names)
            if os.path.exists(os.path.join(path, "CURRENT")):
                names.update(rocksdict.Rdict.list_cf(path, _options()))
            names.discard(_DEFAULT_CF)
            families = {name: rocksdict.Options(raw_mode=True) for name in sorted(names)}
            return rocksdict.Rdict(path, _options(), column_families=families)
        except Exception as exc:
            hint = ""
            if "lock" in str(exc).lower():
                hint = " (is it already open in this or another process?)"
            raise StorageOpenError(f"cannot open RocksDB at {path}{hint}: {exc}") from exc

    @property
    def path(self) -> str:
        return self._path

    @property
    def tables(self) -> tuple[str, ...]:
        return self._names

    @property
    def closed(self) -> bool:
        return self._closed

    def _error(self, exc: Exception, table: str, what: str, *data: object) -> StorageError:
        """Translate whatever `rocksdict` raised into the typed error it means."""
        if self._closed or isinstance(exc, rocksdict.DbClosedError):
            return closed_error()
        if table not in self._handles:
            return UnknownTableError(f"unknown table {table!r}")
        if isinstance(exc, StorageError):
            return exc
        for item in data:
            if not isinstance(item, bytes):
                return StorageEncodeError(
                    f"keys and values must be bytes, got {type(item).__name__}"
                )
        return StorageEngineError(f"RocksDB {what} on table {table!r} failed: {exc}")

    def get(self, table: str, key: bytes) -> bytes | None:
        if type(key) is not bytes and not isinstance(key, bytes):
            # rocksdict would treat a list as a multi-get; refuse it like any non-bytes.
            raise self._error(TypeError(), table, "get", key)
        try:
            value: bytes | None = self._cfs[table].get(key)
        except Exception as exc:
            raise self._error(exc, table, "get", key) from exc
        return value

    def multi_get(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        try:
            # Given a list, rocksdict's get is RocksDB's multi-get: one call for all keys.
            batch = keys if type(keys) is list else list(keys)
            values = cast(list[bytes | None], self._cfs[table].get(batch))
        except Exception as exc:
            raise self._error(exc, table, "multi_get", *keys) from exc
        return values

    def contains(self, table: str, key: bytes) -> bool:
        try:
            return key in self._cfs[table]
        except Exception as exc:
            raise self._error(exc, table, "contains", key) from exc

    def iterate(
        self,
        table: str,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        for bound in (start, end):
            if bound is not None and not isinstance(bound, bytes):
                raise self._error(TypeError(), table, "iterate", bound)
        read_opt: rocksdict.ReadOptions | None = None
        floor: bytes | None = None
        if end is not None:
            if reverse:
                # rocksdict's ReadOptions.set_iterate_lower_bound sets the *upper* bound
                # (seen in 0.3.29), so a backward scan checks `end` itself.
                floor = end
            else:
                read_opt = rocksdict.ReadOptions()
                read_opt.set_iterate_upper_bound(end)
        try:
            cf = self._cfs[table]
            if empty_range(start, end, reverse):
                items: Iterator[tuple[bytes, bytes]] = _EXHAUSTED
            else:
                # Creating the native iterator here (not lazily) fixes its snapshot now.
                # Raw mode: keys and values come back as the bytes that were stored.
                items = cast(
                    Iterator[tuple[bytes, bytes]],
                    cf.items(backwards=reverse, from_key=start, read_opt=read_opt),
                )
        except Exception as exc:
            raise self._error(exc, table, "iterate") from exc
        # The native iterator points into the bounds' bytes without owning them: keep the
        # bounds and options alive as long as it is.
        iterator = _RocksIterator(self, items, table, floor, (read_opt, start, end))
        self._iterators.add(iterator)
        return iterator

    def put(self, table: str, key: bytes, value: bytes, *, sync: bool) -> None:
        try:
            self._cfs[table].put(key, value, self._sync if sync else self._nosync)
        except Exception as exc:
            raise self._error(exc, table, "put", key, value) from exc

    def delete(self, table: str, key: bytes, *, sync: bool) -> None:
        try:
            self._cfs[table].delete(key, self._sync if sync else self._nosync)
        except Exception as exc:
            raise self._error(exc, table, "delete", key) from exc

    def batch(self) -> RocksBatch:
        if self._closed:
            raise closed_error()
        return RocksBatch(self)

    def write(self, batch: EngineBatch, *, sync: bool) -> None:
        if not isinstance(batch, RocksBatch) or batch._engine is not self:
            raise foreign_batch_error()
        if batch._consumed:
            raise consumed_error()
        if self._closed:
            raise closed_error()
        batch._consumed = True
        try:
            self._db.write(batch._batch, self._sync if sync else self._nosync)
        except Exception as exc:
            if self._closed or isinstance(exc, rocksdict.DbClosedError):
                raise closed_error() from exc
            raise StorageEngineError(f"RocksDB batch write failed: {exc}") from exc

    def sync(self) -> None:
        if self._closed:
            raise closed_error()
        try:
            self._db.flush_wal(True)
        except Exception as exc:
            if self._closed or isinstance(exc, rocksdict.DbClosedError):
                raise closed_error() from exc
            raise StorageEngineError(f"RocksDB WAL sync failed: {exc}") from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Every handle and iterator pins the database; drop them all before closing it,
        # or the LOCK file stays held and the path cannot be reopened.
        for iterator in list(self._iterators):
            iterator._release()
        self._iterators = weakref.WeakSet()
        self._cfs = {}
        self._handles = {}
        try:
            self._db.close()
        except Exception as exc:
            raise StorageEngineError(f"closing RocksDB at {self._path} failed: {exc}") from exc


class _RocksIterator(Iterator[tuple[bytes, bytes]]):
    """Wraps a `rocksdict` item iterator: typed errors, and detachable on close."""

    __slots__ = ("__weakref__", "_engine", "_floor", "_items", "_keepalive", "_table")

    def __init__(
        self,
        engine: RocksDBEngine,
        items: Iterator[tuple[bytes, bytes]],
        table: str,
        floor: bytes | None,
        keepalive: tuple[object, ...],
    ) -> None:
        self._engine = engine
        self._items: Iterator[tuple[bytes, bytes]] | None = items
        self._table = table
        self._floor = floor  # backward scans stop at the first key <= floor
        self._keepalive: tuple[object, ...] = keepalive

    def _finish(self, items: Iterator[tuple[bytes, bytes]] | None) -> None:
        # Drop the native iterator (it pins the database) before what it points into.
        self._items = items
        self._keepalive = ()

    def _release(self) -> None:
        self._finish(None)

    def __iter__(self) -> _RocksIterator:
        return self

    def __next__(self) -> tuple[bytes, bytes]:
        items = self._items
        if items is None:
            raise closed_error()
        try:
            item = next(items)
        except StopIteration:
            self._finish(_EXHAUSTED)
            raise
        except Exception as exc:
            raise self._engine._error(exc, self._table, "iteration") from exc
        if self._floor is not None and item[0] <= self._floor:
            self._finish(_EXHAUSTED)
            raise StopIteration
        return item
