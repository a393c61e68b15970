"""The `Database` API: opening by engine kind, table declarations and batch ownership."""

from __future__ import annotations

from pathlib import Path
from typing import Self

import pytest

from soma.storage import (
    BYTES,
    STR,
    U16,
    U32,
    U64,
    Database,
    MemoryEngine,
    RocksDBEngine,
    StructCodec,
    TableSpec,
)
from soma.types.error import (
    InvalidBatchError,
    StorageClosedError,
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
        return U64.encode(self.balance) + self.owner.encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        return cls(data[8:].decode(), U64.decode(data[:8]))


ACCOUNTS = TableSpec("accounts", U32, StructCodec(Account))
META = TableSpec("meta", STR, BYTES)


def test_struct_values(open_db: OpenDb) -> None:
    db = open_db([ACCOUNTS, META])
    accounts = db.table(ACCOUNTS)
    accounts.put(2, Account("bob", 5))
    accounts.put(1, Account("alice", 2**64 - 1))
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
        open_db([TableSpec(name, STR, BYTES) for name in names])


def test_failed_rocksdb_open_releases_the_database(tmp_path: Path) -> None:
    bad = (TableSpec("a", STR, BYTES), TableSpec("a", U64, BYTES))
    with pytest.raises(StorageSchemaError):
        Database.open_rocksdb(tmp_path / "db", bad)
    Database.open_rocksdb(tmp_path / "db", [META]).close()  # not left locked


def test_table_lookup_checks_the_declaration(open_db: OpenDb) -> None:
    db = open_db([ACCOUNTS, META])
    assert db.table(TableSpec("meta", STR, BYTES)) is db.table(META)  # equal spec is fine
    with pytest.raises(UnknownTableError):
        db.table(TableSpec("missing", STR, BYTES))
    with pytest.raises(StorageSchemaError, match="declared as"):
        db.table(TableSpec("accounts", U16, StructCodec(Account)))
    assert set(db.tables) == {"accounts", "meta"}
    assert db.tables["meta"] is db.table(META)
    with pytest.raises(TypeError):
        db.tables["x"] = db.table(META)  # type: ignore[index]


def test_wrapping_an_engine(open_db: OpenDb) -> None:
    engine = MemoryEngine(["meta", "extra"])
    db = Database(engine, [META])
    db.table(META).put("k", b"v")
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
            db.write(foreign)
        with pytest.raises(InvalidBatchError):
            db.write(foreign.raw)  # type: ignore[arg-type]
        assert db.table(META).get("k") is None
        assert not foreign.consumed
        other.write(foreign)
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
        db.write(db.batch())
