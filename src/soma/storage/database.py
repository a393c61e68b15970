"""`Database`: what a subsystem opens — an engine plus its declared, typed tables.

The set of tables is fixed when the database is opened (RocksDB column families are
opened up front), so every table a subsystem uses is declared in one place with its
codecs, and the engine choice ("rocksdb" on disk, or "memory" for tests) is a single
constructor argument rather than something each subsystem handles.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self, TypeVar

from soma.storage.batch import WriteBatch
from soma.storage.engine import Engine
from soma.storage.memory import MemoryEngine
from soma.storage.rocksdb import RocksDBEngine
from soma.storage.table import Table, TableSpec
from soma.types.error import InvalidBatchError, StorageSchemaError, UnknownTableError

K = TypeVar("K")
V = TypeVar("V")

EngineKind = Literal["rocksdb", "memory"]


class Database:
    """An open engine and the typed tables declared on it.

    Prefer the `open*` constructors; `Database(engine, tables)` wraps an engine the
    caller already opened (with at least these tables) and takes ownership of it.
    """

    def __init__(self, engine: Engine, tables: Sequence[TableSpec[Any, Any]]) -> None:
        self._engine = engine
        self._tables: dict[str, Table[Any, Any]] = {}
        for spec in tables:
            if spec.name in self._tables:
                raise StorageSchemaError(f"table {spec.name!r} declared twice")
            if spec.name not in engine.tables:
                raise UnknownTableError(f"engine was not opened with table {spec.name!r}")
            self._tables[spec.name] = Table(engine, spec)

    @classmethod
    def open(
        cls,
        kind: EngineKind,
        tables: Sequence[TableSpec[Any, Any]],
        path: str | os.PathLike[str] | None = None,
    ) -> Self:
        """Open with the engine named by `kind`; "rocksdb" needs a `path`."""
        if kind == "memory":
            return cls.open_memory(tables)
        if kind == "rocksdb":
            if path is None:
                raise StorageSchemaError("a RocksDB database needs a path")
            return cls.open_rocksdb(path, tables)
        raise StorageSchemaError(f"unknown storage engine {kind!r}")

    @classmethod
    def open_rocksdb(
        cls, path: str | os.PathLike[str], tables: Sequence[TableSpec[Any, Any]]
    ) -> Self:
        """Open (creating if needed) a RocksDB database at `path`."""
        engine = RocksDBEngine(path, [spec.name for spec in tables])
        try:
            return cls(engine, tables)
        except BaseException:
            engine.close()
            raise

    @classmethod
    def open_memory(cls, tables: Sequence[TableSpec[Any, Any]]) -> Self:
        """A fresh, empty in-memory database."""
        return cls(MemoryEngine([spec.name for spec in tables]), tables)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def tables(self) -> Mapping[str, Table[Any, Any]]:
        """Every declared table by name (untyped; prefer `table(spec)`)."""
        return MappingProxyType(self._tables)

    def table(self, spec: TableSpec[K, V]) -> Table[K, V]:
        """The table declared by `spec`, typed by the spec's codecs."""
        table = self._tables.get(spec.name)
        if table is None:
            raise UnknownTableError(f"table {spec.name!r} is not declared in this database")
        if table.spec != spec:
            raise StorageSchemaError(
                f"table {spec.name!r} was declared as {table.spec!r}, not {spec!r}"
            )
        return table

    def batch(self) -> WriteBatch:
        """A new, empty batch for this database's tables."""
        return WriteBatch(self._engine)

    def write(self, batch: WriteBatch, *, sync: bool) -> None:
        """Apply `batch` atomically; with `sync=True` it is durable on return.

        `sync` is required: whether a batch must survive a crash before the caller acts
        on it ("persist before you speak") is a decision for each call site to make.
        """
        if not isinstance(batch, WriteBatch):
            raise InvalidBatchError(f"expected a WriteBatch, got {type(batch).__name__}")
        self._engine.write(batch.raw, sync=sync)

    def sync(self) -> None:
        """Make every write so far durable, synced or not (`Engine.sync`)."""
        self._engine.sync()

    @property
    def closed(self) -> bool:
        return self._engine.closed

    def close(self) -> None:
        """Close the engine; idempotent. Tables and iterators then raise
        `StorageClosedError`."""
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"Database({type(self._engine).__name__}, {list(self._tables)}, {state})"
