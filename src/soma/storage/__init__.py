"""Typed tables over a key-value engine (RocksDB on disk, or in memory for tests).

A subsystem declares its tables as `TableSpec`s (a name plus key and value codecs),
opens a `Database` with them, reads and writes through typed `Table`s, and groups writes
that must land together in a `WriteBatch` applied atomically by `Database.write`.
"""

from soma.storage.batch import WriteBatch
from soma.storage.codecs import (
    BYTES,
    STR,
    U8,
    U16,
    U32,
    U64,
    BcsSerializable,
    BytesCodec,
    Codec,
    FixedBytesCodec,
    FixedWidthCodec,
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
    "BYTES",
    "STR",
    "U8",
    "U16",
    "U32",
    "U64",
    "BcsSerializable",
    "BytesCodec",
    "Codec",
    "Database",
    "Engine",
    "EngineBatch",
    "EngineKind",
    "FixedBytesCodec",
    "FixedWidthCodec",
    "MemoryEngine",
    "RocksDBEngine",
    "StrCodec",
    "StructCodec",
    "Table",
    "TableSpec",
    "TupleCodec",
    "UIntCodec",
    "WriteBatch",
    "tuple_codec",
]
