"""The key-value engine interface that every storage backend implements.

Subsystems never talk to RocksDB directly: they use typed tables (`soma.storage.table`)
on top of this small interface, so that tests can swap in the in-memory engine and get
exactly the same behaviour, and so that the engine's quirks (its exception types, its
write-once batches, its iterator lifetimes) are handled in one place.

The model is RocksDB's: named column families ("tables") mapping raw `bytes` keys to raw
`bytes` values, ordered by unsigned lexicographic comparison of the key bytes.

Iteration (`Engine.iterate`) follows Python's `range(start, stop, step)`:

* forward: keys `k` with `start <= k < end`, ascending;
* backward: keys `k` with `end < k <= start`, descending. Backward from `start` begins at
  the largest key `<= start`, which is how "the latest version at or below v" is found.

`start` is inclusive, `end` is exclusive, in the direction of travel; either may be
`None` for "unbounded". An iterator sees the table as it was when the iterator was
created (an implicit snapshot), whatever is written while it is being consumed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Self

from soma.types.error import (
    InvalidBatchError,
    InvalidRangeError,
    StorageClosedError,
    StorageEncodeError,
    StorageSchemaError,
)


class EngineBatch(ABC):
    """Raw writes gathered to be applied atomically by `Engine.write`.

    Operations apply in the order they were added (a `put` after a `delete_range` that
    covers its key survives). A batch belongs to the engine that created it and can be
    written once: RocksDB consumes its batches, and both engines behave the same.
    """

    @abstractmethod
    def put(self, table: str, key: bytes, value: bytes) -> None:
        """Set `key` to `value` in `table`."""

    @abstractmethod
    def delete(self, table: str, key: bytes) -> None:
        """Remove `key` from `table` (a no-op if absent)."""

    @abstractmethod
    def delete_range(self, table: str, start: bytes, end: bytes) -> None:
        """Remove every key `k` of `table` with `start <= k < end`."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of operations in the batch."""

    @property
    @abstractmethod
    def consumed(self) -> bool:
        """True once the batch has been written."""


class Engine(ABC):
    """An open key-value database with a fixed set of named tables.

    All methods raise `StorageClosedError` after `close()`, `UnknownTableError` for a
    table the engine was not opened with, and `StorageEngineError` when the backend
    itself fails. `close()` may be called any number of times.
    """

    @property
    @abstractmethod
    def tables(self) -> tuple[str, ...]:
        """The table names this engine was opened with, in declaration order."""

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once `close()` has been called."""

    @abstractmethod
    def get(self, table: str, key: bytes) -> bytes | None:
        """The value stored under `key`, or None."""

    @abstractmethod
    def multi_get(self, table: str, keys: Sequence[bytes]) -> list[bytes | None]:
        """`[get(table, k) for k in keys]` in one call into the engine."""

    @abstractmethod
    def contains(self, table: str, key: bytes) -> bool:
        """Whether `key` is present in `table`."""

    @abstractmethod
    def iterate(
        self,
        table: str,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries of `table` in key order, bounded as described in the module docstring.

        The snapshot is taken by this call, not by the first `next()`.
        """

    @abstractmethod
    def put(self, table: str, key: bytes, value: bytes, *, sync: bool) -> None:
        """Write one entry; with `sync=True` the write-ahead log is fsynced first.

        `sync` is required here as on the typed layer, so no write is durable or not
        by accident of a default."""

    @abstractmethod
    def delete(self, table: str, key: bytes, *, sync: bool) -> None:
        """Remove one entry (a no-op if absent); `sync` as for `put`."""

    @abstractmethod
    def batch(self) -> EngineBatch:
        """A new, empty batch for `write`."""

    @abstractmethod
    def write(self, batch: EngineBatch, *, sync: bool) -> None:
        """Apply every operation of `batch` atomically: after a crash either all of them
        are visible or none is. With `sync=True` the batch is durable on return."""

    @abstractmethod
    def sync(self) -> None:
        """Make every write so far durable (fsync the write-ahead log): what a synced
        write does, for a caller that wrote unsynced and now needs a durability point."""

    @abstractmethod
    def close(self) -> None:
        """Release the engine's files and locks; idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- helpers shared by the engine implementations --------------------------------------


def validate_table_names(names: Sequence[str]) -> tuple[str, ...]:
    """Check the table list an engine is opened with: non-empty distinct strings."""
    result = tuple(names)
    seen: set[str] = set()
    for name in result:
        if not isinstance(name, str) or not name:
            raise StorageSchemaError(f"table names must be non-empty strings, got {name!r}")
        if name in seen:
            raise StorageSchemaError(f"table {name!r} declared twice")
        seen.add(name)
    return result


def check_bytes(what: str, data: object) -> None:
    """Engines store `bytes` only; anything else is a caller bug (a missing codec)."""
    if not isinstance(data, bytes):
        raise StorageEncodeError(f"{what} must be bytes, got {type(data).__name__}")


def as_bytes(what: str, data: bytes) -> bytes:
    """`data` as plain `bytes` (what RocksDB hands back, even for a bytes subclass)."""
    if type(data) is bytes:
        return data
    check_bytes(what, data)
    return bytes(data)


def check_range(start: bytes, end: bytes) -> None:
    """A range deletion needs `start <= end` (equal bounds delete nothing)."""
    check_bytes("range start", start)
    check_bytes("range end", end)
    if start > end:
        raise InvalidRangeError(f"range start {start.hex()} sorts after end {end.hex()}")


def closed_error(what: str = "storage engine") -> StorageClosedError:
    """The one error every use-after-close raises."""
    return StorageClosedError(f"{what} is closed")


def consumed_error() -> InvalidBatchError:
    return InvalidBatchError("write batch was already written; create a new one")


def foreign_batch_error() -> InvalidBatchError:
    return InvalidBatchError("write batch belongs to another engine")


def empty_range(start: bytes | None, end: bytes | None, reverse: bool) -> bool:
    """Whether bounds select nothing, decided before asking the engine (RocksDB's
    behaviour for a seek past its iteration bound is not something to rely on)."""
    if start is None or end is None:
        return False
    return start <= end if reverse else start >= end
