"""Typed tables over a key-value engine (RocksDB on disk, or in memory for tests).

A subsystem declares its tables as `TableSpec`s (a name plus key and value codecs),
opens a `Database` with them, reads and writes through typed `Table`s, and groups writes
that must land together in a `WriteBatch` applied atomically by `Database.write`.

Every write names its durability (`sync=True` or `sync=False`): there is no default,
because "persist before you speak" must be decided at each call site, not inherited.
Codec names (`U64_BE`, `RAW_BYTES`, `UTF8`, `StorageCodec`) are distinct from the BCS
wire codecs in `soma.types.bcs`, so both can be imported side by side.
"""

from soma.storage.batch import WriteBatch
from soma.storage.codecs import (
    RAW_BYTES,
    U8_BE,
    U16_BE,
    U32_BE,
    U64_BE,
    UTF8,
    BcsSerializable,
    BytesCodec,
    FixedBytesCodec,
    FixedWidthCodec,
    StorageCodec,
    StrCodec,
    StructCodec,
    TupleCodec,
    UIntCodec,
    tuple_codec,
)
from soma.storage.database import Database, EngineKind
from soma.storage.engine import Engine, EngineBatch
from soma.storage.memory import MemoryEngine
from soma.storage.rocksdb import RocksDBEngine
from soma.storage.table import Table, TableSpec

__all__ = [
    "RAW_BYTES",
    "U8_BE",
    "U16_BE",
    "U32_BE",
    "U64_BE",
    "UTF8",
    "BcsSerializable",
    "BytesCodec",
    "Database",
    "Engine",
    "EngineBatch",
    "EngineKind",
    "FixedBytesCodec",
    "FixedWidthCodec",
    "MemoryEngine",
    "RocksDBEngine",
    "StorageCodec",
    "StrCodec",
    "StructCodec",
    "Table",
    "TableSpec",
    "TupleCodec",
    "UIntCodec",
    "WriteBatch",
    "tuple_codec",
]
