"""Typed write batches: several writes, across tables, applied atomically.

Consensus and execution must never leave half an update on disk (a certificate's effects
without its objects, a commit without its index). They gather every write of one logical
step in a `WriteBatch` and apply it with `Database.write`, which the engine makes atomic
even across a crash.
"""

from __future__ import annotations

from typing import Any, TypeVar

from soma.storage.engine import Engine, EngineBatch
from soma.storage.table import Table
from soma.types.error import InvalidBatchError

K = TypeVar("K")
V = TypeVar("V")


class WriteBatch:
    """Writes to tables of one database, applied in order and all at once by
    `Database.write`. Keys and values are encoded as they are added, so a bad key is
    reported here and leaves the batch unchanged. A batch can be written once."""

    __slots__ = ("_engine", "_raw")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._raw: EngineBatch = engine.batch()

    @property
    def raw(self) -> EngineBatch:
        """The engine-level batch (what `Database.write` hands to the engine)."""
        return self._raw

    def _check(self, table: Table[Any, Any]) -> None:
        if table.engine is not self._engine:
            raise InvalidBatchError(f"table {table.name!r} belongs to another database")

    def put(self, table: Table[K, V], key: K, value: V) -> None:
        """Set `key` to `value` in `table`."""
        self._check(table)
        spec = table.spec
        self._raw.put(table.name, spec.key.encode(key), spec.value.encode(value))

    def delete(self, table: Table[K, V], key: K) -> None:
        """Remove `key` from `table` (a no-op if absent)."""
        self._check(table)
        self._raw.delete(table.name, table.spec.key.encode(key))

    def delete_range(self, table: Table[K, V], start: K, end: K) -> None:
        """Remove every key `k` of `table` with `start <= k < end`."""
        self._check(table)
        encode = table.spec.key.encode
        self._raw.delete_range(table.name, encode(start), encode(end))

    def __len__(self) -> int:
        return len(self._raw)

    @property
    def consumed(self) -> bool:
        """True once the batch has been written."""
        return self._raw.consumed
