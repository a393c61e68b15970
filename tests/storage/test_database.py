"""The `Database` API: opening by engine kind, table declarations and batch ownership."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import pytest

from soma.storage import (
    RAW_BYTES,
    U16_BE,
    U32_BE,
    U64_BE,
    UTF8,
    Database,
    Engine,
    MemoryEngine,
    RocksDBEngine,
    StructCodec,
    Table,
    TableSpec,
    UIntCodec,
)
from soma.types import bcs
from soma.types.bcs import BcsStruct, u64
from soma.types.error import (
    BcsDecodeError,
    InvalidBatchError,
    StorageClosedError,
    StorageDecodeError,
    StorageSchemaError,
    UnknownTableError,
)
from tests.storage.conftest import OpenDb


class Account:
    """A tiny stand-in for a BCS struct stored as a table value."""

    def __init__(self, owner: str, balance: int) -> None:
        self.owner, self.balance = owner, balance

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Account) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((self.owner, self.balance))

    def to_bytes(self) -> bytes:
        return U64_BE.encode(self.balance) + self.owner.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls(data[8:].decode(), U64_BE.decode(data[:8]))


ACCOUNTS = TableSpec("accounts", U32_BE, StructCodec(Account))
META = TableSpec("meta", UTF8, RAW_BYTES)


def test_struct_values(open_db: OpenDb) -> None:
    db = open_db([ACCOUNTS, META])
    accounts = db.table(ACCOUNTS)
    accounts.put(2, Account("bob", 5), sync=False)
    accounts.put(1, Account("alice", 2**64 - 1), sync=False)
    assert accounts.get(1) == Account("alice", 2**64 - 1)
    assert list(accounts.items()) == [(1, Account("alice", 2**64 - 1)), (2, Account("bob", 5))]


def test_open_by_kind(tmp_path: Path) -> None:
    with Database.open("memory", [META]) as db:
        assert isinstance(db.engine, MemoryEngine)
    assert db.closed
    with Database.open("rocksdb", [META], tmp_path / "db") as db:
        assert isinstance(db.engine, RocksDBEngine)
        db.table(META).put("k", b"v", sync=True)
    with Database.open_rocksdb(tmp_path / "db", [META]) as db:
        assert db.table(META).get("k") == b"v"
    with pytest.raises(StorageSchemaError, match="path"):
        Database.open("rocksdb", [META])
    with pytest.raises(StorageSchemaError, match="unknown storage engine"):
        Database.open("lmdb", [META])  # type: ignore[arg-type]


@pytest.mark.parametrize("names", [["a", "a"], ["a", ""]])
def test_bad_declarations(open_db: OpenDb, names: list[str]) -> None:
    with pytest.raises(StorageSchemaError):
        open_db([TableSpec(name, UTF8, RAW_BYTES) for name in names])


class Ledger(BcsStruct):
    """A real BCS struct, to check that stored values must go through `StructCodec`."""

    amount: u64


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        (bcs.U64, RAW_BYTES, "soma.types.bcs wire codec"),  # the name-collision mistake
        (U64_BE, bcs.BYTES, "soma.types.bcs wire codec"),
        (U64_BE, Ledger, r"StructCodec\(Ledger\)"),  # the class instead of its codec
        (UIntCodec, RAW_BYTES, r"instances, not classes \(UIntCodec"),
        (U64_BE, 42, "not a storage codec"),
        (object(), RAW_BYTES, "not a storage codec"),
    ],
    ids=["bcs-key", "bcs-value", "struct-class", "codec-class", "int", "object"],
)
def test_spec_rejects_non_storage_codecs_when_declared(key: Any, value: Any, hint: str) -> None:
    """A wrong codec fails where the table is declared, not with an AttributeError on
    the first read or write, and the message says what to use instead."""
    with pytest.raises(StorageSchemaError, match=hint) as info:
        TableSpec("t", key, value)
    assert "StructCodec(cls)" in str(info.value) and "'t'" in str(info.value)


def test_corrupt_stored_struct_is_a_storage_decode_error(open_db: OpenDb) -> None:
    spec = TableSpec("ledger", U32_BE, StructCodec(Ledger))
    db = open_db([spec])
    ledger = db.table(spec)
    ledger.put(1, Ledger(5), sync=False)
    db.engine.put("ledger", U32_BE.encode(2), b"\x05\x00", sync=False)  # truncated u64
    assert ledger.get(1) == Ledger(5)
    with pytest.raises(StorageDecodeError, match="Ledger") as info:
        ledger.get(2)
    assert isinstance(info.value.__cause__, BcsDecodeError)
    with pytest.raises(StorageDecodeError):
        list(ledger.items())


@pytest.mark.parametrize(
    "method",
    [
        Table.put,
        Table.delete,
        Database.write,
        Engine.put,
        Engine.delete,
        Engine.write,
        MemoryEngine.put,
        MemoryEngine.delete,
        MemoryEngine.write,
        RocksDBEngine.put,
        RocksDBEngine.delete,
        RocksDBEngine.write,
    ],
    ids=lambda m: m.__qualname__,
)
def test_every_write_must_choose_its_durability(method: Callable[..., None]) -> None:
    """Persist before you speak: `sync` is keyword-only with no default, so no call
    site gets (or skips) an fsync by accident."""
    sync = inspect.signature(method).parameters["sync"]
    assert sync.kind is inspect.Parameter.KEYWORD_ONLY
    assert sync.default is inspect.Parameter.empty


def test_writes_without_sync_are_refused(open_db: OpenDb) -> None:
    db = open_db([META])
    meta = db.table(META)
    with pytest.raises(TypeError, match="sync"):
        meta.put("k", b"v")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="sync"):
        meta.delete("k")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="sync"):
        db.write(db.batch())  # type: ignore[call-arg]
    assert meta.get("k") is None


def test_failed_rocksdb_open_releases_the_database(tmp_path: Path) -> None:
    bad = (TableSpec("a", UTF8, RAW_BYTES), TableSpec("a", U64_BE, RAW_BYTES))
    with pytest.raises(StorageSchemaError):
        Database.open_rocksdb(tmp_path / "db", bad)
    Database.open_rocksdb(tmp_path / "db", [META]).close()  # not left locked


def test_table_lookup_checks_the_declaration(open_db: OpenDb) -> None:
    db = open_db([ACCOUNTS, META])
    assert db.table(TableSpec("meta", UTF8, RAW_BYTES)) is db.table(META)  # equal spec is fine
    with pytest.raises(UnknownTableError):
        db.table(TableSpec("missing", UTF8, RAW_BYTES))
    with pytest.raises(StorageSchemaError, match="declared as"):
        db.table(TableSpec("accounts", U16_BE, StructCodec(Account)))
    assert set(db.tables) == {"accounts", "meta"}
    assert db.tables["meta"] is db.table(META)
    with pytest.raises(TypeError):
        db.tables["x"] = db.table(META)  # type: ignore[index]


def test_wrapping_an_engine(open_db: OpenDb) -> None:
    engine = MemoryEngine(["meta", "extra"])
    db = Database(engine, [META])
    db.table(META).put("k", b"v", sync=False)
    assert engine.get("meta", b"k") == b"v"
    with pytest.raises(UnknownTableError):
        Database(MemoryEngine(["meta"]), [META, ACCOUNTS])
    db.close()
    assert engine.closed


def test_batches_belong_to_their_database(open_db: OpenDb) -> None:
    db = open_db([META])
    other = Database.open_memory([META])
    try:
        batch = db.batch()
        with pytest.raises(InvalidBatchError, match="another database"):
            batch.put(other.table(META), "k", b"v")
        with pytest.raises(InvalidBatchError):
            batch.delete(other.table(META), "k")
        with pytest.raises(InvalidBatchError):
            batch.delete_range(other.table(META), "a", "b")
        foreign = other.batch()
        foreign.put(other.table(META), "k", b"v")
        with pytest.raises(InvalidBatchError):
            db.write(foreign, sync=False)
        with pytest.raises(InvalidBatchError):
            db.write(foreign.raw, sync=False)  # type: ignore[arg-type]
        assert db.table(META).get("k") is None
        assert not foreign.consumed
        other.write(foreign, sync=False)
        assert foreign.consumed
    finally:
        other.close()


def test_repr_and_close(open_db: OpenDb) -> None:
    db = open_db([META])
    assert "meta" in repr(db) and "open" in repr(db)
    assert "meta" in repr(db.table(META))
    db.close()
    assert "closed" in repr(db)
    with pytest.raises(StorageClosedError):
        db.write(db.batch(), sync=False)
