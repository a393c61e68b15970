"""Typed tables: one column family seen through a key codec and a value codec.

A subsystem declares its tables once as module-level `TableSpec`s (name + codecs); the
`Database` opens them and hands out `Table` objects whose methods take and return the
subsystem's own types. Encoding happens here, on every call, so no raw bytes leak into
subsystem code and a key that cannot be encoded fails before touching the engine.

Range bounds follow the engine (see `soma.storage.engine`): `start` inclusive, `end`
exclusive, in the direction of travel, like `range()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from soma.storage.codecs import StorageCodec
from soma.storage.engine import Engine
from soma.types.error import StorageSchemaError

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class TableSpec(Generic[K, V]):
    """The declaration of a table: its column-family name and its codecs.

    Specs compare equal when name and codecs are equal, which is how `Database.table`
    checks that a table is used with the codecs it was opened with. Collect a
    subsystem's specs in a tuple (`TABLES = (OBJECTS, EFFECTS)`): mypy infers a list of
    differently-typed specs as `list[object]`.
    """

    name: str
    key: StorageCodec[K]
    value: StorageCodec[V]

    def __post_init__(self) -> None:
        # Checked here, when the module declaring the table is imported, rather than on
        # the first read or write: a BCS wire codec (`soma.types.bcs.U64`, with `enc` /
        # `dec`) or a bare struct class looks plausible here and would otherwise fail
        # much later with an AttributeError deep inside a table operation.
        _check_codec(self.name, "key", self.key)
        _check_codec(self.name, "value", self.value)


def _check_codec(table: str, role: str, codec: object) -> None:
    """Raise `StorageSchemaError` unless `codec` is an object (not a class) with
    callable `encode` and `decode`."""
    is_class = isinstance(codec, type)
    if (
        not is_class
        and callable(getattr(codec, "encode", None))
        and callable(getattr(codec, "decode", None))
    ):
        return
    if hasattr(codec, "enc") and hasattr(codec, "dec"):
        hint = "it looks like a soma.types.bcs wire codec; "
    elif isinstance(codec, type) and hasattr(codec, "from_bytes"):
        hint = f"for a BCS struct class write StructCodec({codec.__name__}); "
    elif isinstance(codec, type):
        hint = f"codecs are instances, not classes ({codec.__name__}(...)); "
    else:
        hint = ""
    raise StorageSchemaError(
        f"table {table!r}: {role} codec {codec!r} is not a storage codec (it needs "
        f"encode(value) -> bytes and decode(bytes) -> value); {hint}use a soma.storage "
        "codec (U64_BE, RAW_BYTES, UTF8, FixedBytesCodec, tuple_codec) or StructCodec(cls)"
    )


class Table(Generic[K, V]):
    """Typed access to one table of an open engine. Get it from `Database.table`."""

    __slots__ = ("_decode_key", "_decode_value", "_encode_key", "_engine", "_name", "spec")

    def __init__(self, engine: Engine, spec: TableSpec[K, V]) -> None:
        self._engine = engine
        self._name = spec.name
        self.spec = spec
        # Bound methods cached once: these sit on every read path.
        self._encode_key = spec.key.encode
        self._decode_key = spec.key.decode
        self._decode_value = spec.value.decode

    @property
    def name(self) -> str:
        return self._name

    @property
    def engine(self) -> Engine:
        return self._engine

    def get(self, key: K) -> V | None:
        """The value stored under `key`, or None."""
        raw = self._engine.get(self._name, self._encode_key(key))
        return None if raw is None else self._decode_value(raw)

    def multi_get(self, keys: Iterable[K]) -> list[V | None]:
        """Values for several keys (None where absent), in one engine call."""
        encode, decode = self._encode_key, self._decode_value
        raws = self._engine.multi_get(self._name, [encode(key) for key in keys])
        return [None if raw is None else decode(raw) for raw in raws]

    def contains(self, key: K) -> bool:
        return self._engine.contains(self._name, self._encode_key(key))

    def __contains__(self, key: K) -> bool:
        return self.contains(key)

    def items(
        self, start: K | None = None, end: K | None = None, reverse: bool = False
    ) -> Iterator[tuple[K, V]]:
        """Decoded entries in key order from `start` (inclusive) towards `end`
        (exclusive); with `reverse`, descending from the largest key `<= start`.

        The snapshot is taken by this call, so later writes never disturb the iteration.
        """
        raw = self._iterate(start, end, reverse)
        decode_key, decode_value = self._decode_key, self._decode_value
        return ((decode_key(k), decode_value(v)) for k, v in raw)

    def keys(
        self, start: K | None = None, end: K | None = None, reverse: bool = False
    ) -> Iterator[K]:
        """The keys `items` would yield."""
        decode_key = self._decode_key
        return (decode_key(k) for k, _ in self._iterate(start, end, reverse))

    def values(
        self, start: K | None = None, end: K | None = None, reverse: bool = False
    ) -> Iterator[V]:
        """The values `items` would yield."""
        decode_value = self._decode_value
        return (decode_value(v) for _, v in self._iterate(start, end, reverse))

    def first(self) -> tuple[K, V] | None:
        """The entry with the smallest key, or None if the table is empty."""
        return next(self.items(), None)

    def last(self) -> tuple[K, V] | None:
        """The entry with the largest key, or None if the table is empty."""
        return next(self.items(reverse=True), None)

    def put(self, key: K, value: V, *, sync: bool) -> None:
        """Write one entry on its own; use a batch to write several atomically.

        `sync` has no default on purpose: `sync=True` means durable on return (fsynced
        write-ahead log), which anything announced to other nodes must be; `sync=False`
        may be lost in a crash. Each call site has to say which one it means.
        """
        self._engine.put(
            self._name, self._encode_key(key), self.spec.value.encode(value), sync=sync
        )

    def delete(self, key: K, *, sync: bool) -> None:
        """Remove one entry (a no-op if absent); `sync` as for `put`, and as required."""
        self._engine.delete(self._name, self._encode_key(key), sync=sync)

    def _iterate(
        self, start: K | None, end: K | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        encode = self._encode_key
        return self._engine.iterate(
            self._name,
            None if start is None else encode(start),
            None if end is None else encode(end),
            reverse=reverse,
        )

    def __repr__(self) -> str:
        return f"Table({self._name!r}, key={self.spec.key!r}, value={self.spec.value!r})"
