"""Conformance: the memory and RocksDB engines behave identically.

Every test here runs once per engine (the `engine_kind` fixture in conftest.py), first at
the raw engine level and then through typed tables, so that code tested against the
memory engine behaves the same on RocksDB.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from soma.storage import (
    RAW_BYTES,
    U64_BE,
    UTF8,
    Database,
    Engine,
    FixedBytesCodec,
    RocksDBEngine,
    TableSpec,
    tuple_codec,
)
from soma.types.error import (
    InvalidBatchError,
    InvalidRangeError,
    StorageClosedError,
    StorageEncodeError,
    StorageError,
    UnknownTableError,
)
from tests.storage.conftest import OpenDb, OpenEngine

# Keys chosen so that bytewise order differs from naive orders: prefixes, the empty key,
# and bytes >= 0x80 (a signed comparison would put them first).
ORDERED_KEYS = [
    b"",
    b"\x00",
    b"\x00\x00",
    b"\x00\x01",
    b"\x01",
    b"\x7f",
    b"\x7f\xff",
    b"\x80",
    b"\xfe\xff\xff",
    b"\xff",
    b"\xff\x00",
    b"\xff\xff",
]


def fill(engine: Engine, table: str, keys: list[bytes]) -> None:
    for key in keys:
        engine.put(table, key, b"v" + key, sync=False)


def model_range(
    keys: list[bytes], start: bytes | None, end: bytes | None, reverse: bool
) -> list[bytes]:
    """What `iterate` must return: `range()`-like bounds over the sorted keys."""
    ordered = sorted(keys, reverse=reverse)
    if reverse:
        return [k for k in ordered if (start is None or k <= start) and (end is None or k > end)]
    return [k for k in ordered if (start is None or k >= start) and (end is None or k < end)]


# --- point operations -----------------------------------------------------------------


def test_get_put_delete(engine: Engine) -> None:
    assert engine.get("a", b"k") is None
    engine.put("a", b"k", b"v1", sync=False)
    assert engine.get("a", b"k") == b"v1"
    engine.put("a", b"k", b"v2", sync=False)
    assert engine.get("a", b"k") == b"v2"
    engine.delete("a", b"k", sync=False)
    assert engine.get("a", b"k") is None
    engine.delete("a", b"k", sync=False)  # deleting an absent key is a no-op
    assert engine.get("a", b"k") is None


def test_empty_key_and_empty_value_are_stored(engine: Engine) -> None:
    engine.put("a", b"", b"", sync=False)
    assert engine.get("a", b"") == b""
    assert engine.contains("a", b"")
    assert list(engine.iterate("a")) == [(b"", b"")]


class _Id(bytes):
    """A bytes subclass, like the project's ObjectID."""


def test_bytes_subclasses_are_stored_as_plain_bytes(engine: Engine) -> None:
    engine.put("a", _Id(b"k1"), _Id(b"v1"), sync=False)
    batch = engine.batch()
    batch.put("a", _Id(b"k2"), _Id(b"v2"))
    engine.write(batch, sync=False)
    items = list(engine.iterate("a"))
    assert items == [(b"k1", b"v1"), (b"k2", b"v2")]
    assert all(type(k) is bytes and type(v) is bytes for k, v in items)
    assert type(engine.get("a", _Id(b"k1"))) is bytes
    engine.delete("a", _Id(b"k1"), sync=False)
    assert engine.multi_get("a", [_Id(b"k1"), b"k2"]) == [None, b"v2"]


def test_tables_are_independent(engine: Engine) -> None:
    engine.put("a", b"k", b"in a", sync=False)
    engine.put("b", b"k", b"in b", sync=False)
    assert engine.get("a", b"k") == b"in a"
    assert engine.get("b", b"k") == b"in b"
    assert engine.get("c", b"k") is None
    engine.delete("a", b"k", sync=False)
    assert engine.get("b", b"k") == b"in b"


def test_multi_get(engine: Engine) -> None:
    engine.put("a", b"x", b"1", sync=False)
    engine.put("a", b"z", b"3", sync=False)
    engine.put("b", b"y", b"other table", sync=False)
    assert engine.multi_get("a", [b"x", b"y", b"z", b"x", b""]) == [b"1", None, b"3", b"1", None]
    assert engine.multi_get("a", []) == []
    assert engine.multi_get("a", (b"z",)) == [b"3"]


def test_contains(engine: Engine) -> None:
    assert not engine.contains("a", b"k")
    engine.put("a", b"k", b"", sync=False)
    assert engine.contains("a", b"k")
    assert not engine.contains("b", b"k")
    engine.delete("a", b"k", sync=False)
    assert not engine.contains("a", b"k")


def test_sync_writes(engine: Engine) -> None:
    engine.put("a", b"k", b"v", sync=True)
    engine.delete("a", b"j", sync=True)
    batch = engine.batch()
    batch.put("b", b"k", b"v")
    engine.write(batch, sync=True)
    assert engine.get("a", b"k") == engine.get("b", b"k") == b"v"


def test_unknown_table(engine: Engine) -> None:
    with pytest.raises(UnknownTableError):
        engine.get("nope", b"k")
    with pytest.raises(UnknownTableError):
        engine.put("nope", b"k", b"v", sync=False)
    with pytest.raises(UnknownTableError):
        engine.iterate("nope")
    with pytest.raises(UnknownTableError):
        engine.batch().put("nope", b"k", b"v")


@pytest.mark.parametrize("bad", ["text", 7, None, bytearray(b"k")])
def test_non_bytes_keys_and_values_are_typed_errors(engine: Engine, bad: object) -> None:
    with pytest.raises(StorageEncodeError):
        engine.put("a", bad, b"v", sync=False)  # type: ignore[arg-type]
    with pytest.raises(StorageEncodeError):
        engine.put("a", b"k", bad, sync=False)  # type: ignore[arg-type]
    with pytest.raises(StorageEncodeError):
        engine.get("a", bad)  # type: ignore[arg-type]
    with pytest.raises(StorageEncodeError):
        engine.batch().put("a", bad, b"v")  # type: ignore[arg-type]
    assert list(engine.iterate("a")) == []


# --- iteration --------------------------------------------------------------------------


def test_iteration_orders_by_unsigned_bytes(engine: Engine) -> None:
    shuffled = ORDERED_KEYS[5:] + ORDERED_KEYS[:5][::-1]
    fill(engine, "a", shuffled)
    assert [k for k, _ in engine.iterate("a")] == ORDERED_KEYS
    assert [k for k, _ in engine.iterate("a", reverse=True)] == ORDERED_KEYS[::-1]
    assert all(v == b"v" + k for k, v in engine.iterate("a"))


def test_iteration_of_empty_table(engine: Engine) -> None:
    assert list(engine.iterate("a")) == []
    assert list(engine.iterate("a", b"\x01", b"\x02")) == []
    assert list(engine.iterate("a", b"\x01", reverse=True)) == []


# Bounds: present keys, absent keys between them, and both extremes.
BOUNDS = [None, b"", b"\x00", b"\x00\x00\x00", b"\x7f\x00", b"\x80", b"\xff", b"\xff\xff\xff"]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_iteration_bounds_match_model(engine: Engine, reverse: bool) -> None:
    fill(engine, "a", ORDERED_KEYS)
    for start, end in itertools.product(BOUNDS, BOUNDS):
        got = [k for k, _ in engine.iterate("a", start, end, reverse=reverse)]
        assert got == model_range(ORDERED_KEYS, start, end, reverse), (start, end)


def test_forward_iteration_examples(engine: Engine) -> None:
    fill(engine, "a", [b"\x10", b"\x20", b"\x30", b"\x40"])

    def keys(start: bytes | None, end: bytes | None) -> list[bytes]:
        return [k for k, _ in engine.iterate("a", start, end)]

    assert keys(b"\x20", None) == [b"\x20", b"\x30", b"\x40"]  # start inclusive
    assert keys(b"\x21", None) == [b"\x30", b"\x40"]  # absent start: next key up
    assert keys(None, b"\x30") == [b"\x10", b"\x20"]  # end exclusive
    assert keys(b"\x20", b"\x40") == [b"\x20", b"\x30"]
    assert keys(b"\x00", b"\xff") == [b"\x10", b"\x20", b"\x30", b"\x40"]
    assert keys(b"\x41", None) == []  # past the last key
    assert keys(b"\x30", b"\x30") == []
    assert keys(b"\x40", b"\x10") == []  # start after end


def test_backward_iteration_examples(engine: Engine) -> None:
    fill(engine, "a", [b"\x10", b"\x20", b"\x30", b"\x40"])

    def keys(start: bytes | None, end: bytes | None) -> list[bytes]:
        return [k for k, _ in engine.iterate("a", start, end, reverse=True)]

    assert keys(None, None) == [b"\x40", b"\x30", b"\x20", b"\x10"]
    assert keys(b"\x30", None) == [b"\x30", b"\x20", b"\x10"]  # start inclusive
    assert keys(b"\x2f", None) == [b"\x20", b"\x10"]  # absent start: largest key <= start
    assert keys(b"\x30\x00", None) == [b"\x30", b"\x20", b"\x10"]  # a longer key sorts after
    assert keys(None, b"\x20") == [b"\x40", b"\x30"]  # end exclusive
    assert keys(b"\x40", b"\x10") == [b"\x40", b"\x30", b"\x20"]
    assert keys(b"\xff", b"\x00") == [b"\x40", b"\x30", b"\x20", b"\x10"]
    assert keys(b"\x0f", None) == []  # before the first key
    assert keys(b"\x20", b"\x20") == []
    assert keys(b"\x10", b"\x40") == []  # start below end


def test_iterator_is_lazy_and_partial_consumption_is_fine(engine: Engine) -> None:
    fill(engine, "a", ORDERED_KEYS)
    iterator = engine.iterate("a", reverse=True)
    assert next(iterator)[0] == b"\xff\xff"
    assert next(iterator)[0] == b"\xff\x00"
    assert iter(iterator) is iterator
    del iterator
    assert len(list(engine.iterate("a"))) == len(ORDERED_KEYS)


# --- snapshot semantics -------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
@pytest.mark.parametrize("advance", [0, 1, 3])
def test_iterator_sees_snapshot_taken_at_creation(
    engine: Engine, reverse: bool, advance: int
) -> None:
    keys = [bytes([i]) for i in range(0, 100, 10)]
    fill(engine, "a", keys)
    before = list(engine.iterate("a", reverse=reverse))
    iterator = engine.iterate("a", reverse=reverse)
    seen = [next(iterator) for _ in range(advance)]

    # Writes of every kind, before and after the iterator's position.
    engine.put("a", b"\x05", b"new", sync=False)
    engine.put("a", b"\x55", b"new", sync=False)
    engine.put("a", b"\x50", b"overwritten", sync=False)
    engine.delete("a", b"\x00", sync=False)
    engine.delete("a", b"\x5a", sync=False)
    batch = engine.batch()
    batch.put("a", b"\x99", b"new")
    batch.delete_range("a", b"\x14", b"\x46")
    engine.write(batch, sync=False)

    assert seen + list(iterator) == before
    # A new iterator sees the new state.
    after = dict(engine.iterate("a"))
    assert after[b"\x50"] == b"overwritten"
    assert b"\x00" not in after and b"\x1e" not in after and b"\x99" in after


def test_bounded_iterators_keep_snapshot(engine: Engine) -> None:
    fill(engine, "a", [b"\x10", b"\x20", b"\x30"])
    forward = engine.iterate("a", b"\x10", b"\x30")
    backward = engine.iterate("a", b"\x30", b"\x10", reverse=True)
    engine.put("a", b"\x15", b"", sync=False)
    engine.delete("a", b"\x20", sync=False)
    assert [k for k, _ in forward] == [b"\x10", b"\x20"]
    assert [k for k, _ in backward] == [b"\x30", b"\x20"]


def test_iterators_on_other_tables_unaffected_by_copy_on_write(engine: Engine) -> None:
    fill(engine, "a", [b"\x01", b"\x02"])
    fill(engine, "b", [b"\x01"])
    it_a = engine.iterate("a")
    it_a2 = engine.iterate("a")
    engine.put("a", b"\x03", b"", sync=False)
    it_a3 = engine.iterate("a")
    engine.put("a", b"\x04", b"", sync=False)
    engine.put("b", b"\x02", b"", sync=False)
    assert len(list(it_a)) == len(list(it_a2)) == 2
    assert len(list(it_a3)) == 3
    assert len(list(engine.iterate("a"))) == 4


# --- batches ------------------------------------------------------------------------------


def test_batch_is_atomic_across_tables(engine: Engine) -> None:
    engine.put("c", b"old", b"x", sync=False)
    batch = engine.batch()
    batch.put("a", b"k1", b"1")
    batch.put("b", b"k2", b"2")
    batch.delete("c", b"old")
    assert len(batch) == 3
    # Nothing is visible until the batch is written.
    assert engine.get("a", b"k1") is None and engine.get("c", b"old") == b"x"
    engine.write(batch, sync=False)
    assert engine.get("a", b"k1") == b"1"
    assert engine.get("b", b"k2") == b"2"
    assert engine.get("c", b"old") is None
    assert batch.consumed


def test_batch_operations_apply_in_order(engine: Engine) -> None:
    batch = engine.batch()
    batch.put("a", b"\x01", b"first")
    batch.put("a", b"\x01", b"second")
    batch.put("a", b"\x02", b"doomed")
    batch.delete_range("a", b"\x00", b"\x03")
    batch.put("a", b"\x02", b"revived")
    batch.put("a", b"\x05", b"x")
    batch.delete("a", b"\x05")
    engine.write(batch, sync=False)
    assert list(engine.iterate("a")) == [(b"\x02", b"revived")]


def test_empty_batch(engine: Engine) -> None:
    batch = engine.batch()
    assert len(batch) == 0
    engine.write(batch, sync=True)
    assert list(engine.iterate("a")) == []


def test_batch_can_be_written_only_once(engine: Engine) -> None:
    batch = engine.batch()
    batch.put("a", b"k", b"v")
    engine.write(batch, sync=False)
    engine.delete("a", b"k", sync=False)
    with pytest.raises(InvalidBatchError):
        engine.write(batch, sync=False)
    assert engine.get("a", b"k") is None


def test_batch_from_another_engine_is_rejected(engine: Engine, open_engine: OpenEngine) -> None:
    from soma.storage import MemoryEngine

    other = MemoryEngine(["a"])
    batch = other.batch()
    batch.put("a", b"k", b"v")
    with pytest.raises(InvalidBatchError):
        engine.write(batch, sync=False)
    assert engine.get("a", b"k") is None
    other.close()


def test_delete_range(engine: Engine) -> None:
    keys = [bytes([i]) for i in range(10)]
    fill(engine, "a", keys)
    fill(engine, "b", keys)
    batch = engine.batch()
    batch.delete_range("a", b"\x03", b"\x07")  # [start, end)
    batch.delete_range("a", b"\x08\x00", b"\x09")  # absent bounds; removes nothing here
    batch.delete_range("a", b"\x05", b"\x05")  # empty range
    engine.write(batch, sync=False)
    assert [k for k, _ in engine.iterate("a")] == [bytes([i]) for i in (0, 1, 2, 7, 8, 9)]
    assert len(list(engine.iterate("b"))) == 10  # other tables untouched

    batch = engine.batch()
    batch.delete_range("a", b"", b"\xff")  # everything below \xff
    engine.write(batch, sync=False)
    assert [k for k, _ in engine.iterate("a")] == []
    batch = engine.batch()
    batch.delete_range("b", b"\x02\x00", b"\x05\x00")
    engine.write(batch, sync=False)
    assert [k[0] for k, _ in engine.iterate("b")] == [0, 1, 2, 6, 7, 8, 9]


def test_delete_range_rejects_reversed_bounds(engine: Engine) -> None:
    batch = engine.batch()
    with pytest.raises(InvalidRangeError):
        batch.delete_range("a", b"\x02", b"\x01")
    assert len(batch) == 0


# --- closing ------------------------------------------------------------------------------


def test_closed_engine_raises_typed_errors(engine: Engine) -> None:
    engine.put("a", b"k", b"v", sync=False)
    batch = engine.batch()
    batch.put("a", b"j", b"v")
    live = engine.iterate("a")
    assert not engine.closed
    engine.close()
    engine.close()  # idempotent
    assert engine.closed
    calls = [
        lambda: engine.get("a", b"k"),
        lambda: engine.multi_get("a", [b"k"]),
        lambda: engine.contains("a", b"k"),
        lambda: engine.iterate("a"),
        lambda: engine.put("a", b"k", b"v", sync=False),
        lambda: engine.delete("a", b"k", sync=False),
        lambda: engine.batch(),
        lambda: engine.write(batch, sync=False),
        lambda: next(live),
    ]
    for call in calls:
        with pytest.raises(StorageClosedError):
            call()
    assert issubclass(StorageClosedError, StorageError)


def test_context_manager_closes(open_engine: OpenEngine) -> None:
    with open_engine(["a"]) as engine:
        engine.put("a", b"k", b"v", sync=False)
    assert engine.closed
    with pytest.raises(StorageClosedError):
        engine.get("a", b"k")


# --- persistence (RocksDB only) ---------------------------------------------------------


def test_rocksdb_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with RocksDBEngine(path, ["a", "b"]) as engine:
        engine.put("a", b"k", b"v", sync=True)
        batch = engine.batch()
        batch.put("b", b"x", b"y")
        engine.delete("a", b"gone", sync=False)
        engine.write(batch, sync=False)  # not synced: still survives a clean close
        iterator = engine.iterate("a")  # a live iterator must not keep the DB locked
        next(iterator)
    with RocksDBEngine(path, ["a", "b", "new"]) as engine:
        assert engine.get("a", b"k") == b"v"
        assert engine.get("b", b"x") == b"y"
        assert list(engine.iterate("new")) == []
        engine.put("new", b"n", b"1", sync=False)
    with RocksDBEngine(path, ["new"]) as engine:  # a subset of the tables is fine
        assert engine.get("new", b"n") == b"1"
    with RocksDBEngine(path, ["a", "b", "new"]) as engine:
        assert [k for k, _ in engine.iterate("a")] == [b"k"]


# --- typed tables -------------------------------------------------------------------------

U64_TABLE = TableSpec("ints", U64_BE, UTF8)
OBJECT_KEY = tuple_codec(FixedBytesCodec(32), U64_BE)
VERSIONS = TableSpec("versions", OBJECT_KEY, RAW_BYTES)
NAMES = TableSpec("names", UTF8, U64_BE)
ALL_TABLES = (U64_TABLE, VERSIONS, NAMES)


@pytest.fixture
def db(open_db: OpenDb) -> Database:
    return open_db(ALL_TABLES)


def test_u64_keys_iterate_in_numeric_order(db: Database) -> None:
    ints = db.table(U64_TABLE)
    numbers = [2**64 - 1, 256, 0, 2**32, 1, 255, 2**32 - 1, 65535, 65536]
    for n in numbers:
        ints.put(n, str(n), sync=False)
    assert list(ints.keys()) == sorted(numbers)
    assert list(ints.keys(reverse=True)) == sorted(numbers, reverse=True)
    assert list(ints.keys(255, 2**32)) == [255, 256, 65535, 65536, 2**32 - 1]
    assert list(ints.keys(2**32, 255, reverse=True)) == [2**32, 2**32 - 1, 65536, 65535, 256]
    assert list(ints.keys(1000, reverse=True)) == [256, 255, 1, 0]
    assert ints.first() == (0, "0")
    assert ints.last() == (2**64 - 1, str(2**64 - 1))
    assert ints.get(2**32) == "4294967296"
    assert list(ints.values(0, 2)) == ["0", "1"]


def test_composite_keys_group_versions_of_an_object(db: Database) -> None:
    versions = db.table(VERSIONS)
    ids = [bytes([b]) * 32 for b in (0x00, 0x7F, 0x80, 0xFF)]
    for object_id in reversed(ids):
        for version in (5, 1, 2**40, 300):
            versions.put(
                (object_id, version), object_id[:1] + version.to_bytes(8, "big"), sync=False
            )

    all_keys = list(versions.keys())
    assert all_keys == [(i, v) for i in ids for v in (1, 5, 300, 2**40)]

    # Every version of one object is one contiguous range.
    oid = ids[2]
    assert list(versions.keys((oid, 0), (ids[3], 0))) == [(oid, v) for v in (1, 5, 300, 2**40)]
    # "Latest version <= 299": backward from (id, 299).
    key, value = next(versions.items((oid, 299), reverse=True))
    assert key == (oid, 5) and value == b"\x80" + (5).to_bytes(8, "big")
    # Backward from below an object's first version lands on the previous object.
    assert next(versions.keys((oid, 0), reverse=True)) == (ids[1], 2**40)


def test_table_point_operations(db: Database) -> None:
    names = db.table(NAMES)
    assert names.get("alice") is None
    assert names.first() is None and names.last() is None
    names.put("alice", 1, sync=False)
    names.put("bob", 2, sync=True)
    assert names.get("alice") == 1
    assert "alice" in names and names.contains("bob") and "carol" not in names
    assert names.multi_get(["bob", "carol", "alice"]) == [2, None, 1]
    names.delete("alice", sync=False)
    assert names.multi_get(iter(["alice"])) == [None]
    assert list(names.items()) == [("bob", 2)]
    assert names.first() == names.last() == ("bob", 2)


def test_typed_batch_across_tables(db: Database) -> None:
    ints, names, versions = db.table(U64_TABLE), db.table(NAMES), db.table(VERSIONS)
    ints.put(7, "old", sync=False)
    batch = db.batch()
    batch.put(ints, 1, "one")
    batch.put(names, "one", 1)
    batch.put(versions, (b"\x01" * 32, 1), b"obj")
    batch.delete(ints, 7)
    assert len(batch) == 4
    assert ints.get(1) is None
    db.write(batch, sync=True)
    assert ints.get(1) == "one" and names.get("one") == 1
    assert versions.get((b"\x01" * 32, 1)) == b"obj"
    assert ints.get(7) is None
    with pytest.raises(InvalidBatchError):
        db.write(batch, sync=False)


def test_typed_delete_range(db: Database) -> None:
    ints = db.table(U64_TABLE)
    for n in range(10):
        ints.put(n, "", sync=False)
    batch = db.batch()
    batch.delete_range(ints, 2, 8)
    db.write(batch, sync=False)
    assert list(ints.keys()) == [0, 1, 8, 9]
    with pytest.raises(InvalidRangeError):
        db.batch().delete_range(ints, 5, 4)


@pytest.mark.parametrize("bad_key", [-1, 2**64, "7", 1.0])
def test_bad_integer_keys_are_typed_errors(db: Database, bad_key: object) -> None:
    ints = db.table(U64_TABLE)
    for call in (
        lambda: ints.put(bad_key, "x", sync=False),  # type: ignore[arg-type]
        lambda: ints.get(bad_key),  # type: ignore[arg-type]
        lambda: ints.delete(bad_key, sync=False),  # type: ignore[arg-type]
        lambda: ints.contains(bad_key),  # type: ignore[arg-type]
        lambda: ints.multi_get([1, bad_key]),  # type: ignore[list-item]
        lambda: list(ints.items(start=bad_key)),  # type: ignore[arg-type]
        lambda: db.batch().put(ints, bad_key, "x"),  # type: ignore[misc]
    ):
        with pytest.raises(StorageEncodeError):
            call()
    assert list(ints.items()) == []


@pytest.mark.parametrize("object_id", [b"", b"\x01" * 31, b"\x01" * 33])
def test_wrong_length_bytes_keys_are_typed_errors(db: Database, object_id: bytes) -> None:
    versions = db.table(VERSIONS)
    with pytest.raises(StorageEncodeError):
        versions.put((object_id, 1), b"x", sync=False)
    with pytest.raises(StorageEncodeError):
        versions.get((object_id, 1))
    with pytest.raises(StorageEncodeError):
        versions.put((b"\x01" * 32, -1), b"x", sync=False)  # a bad part anywhere in the tuple
    with pytest.raises(StorageEncodeError):
        versions.put((b"\x01" * 32,), b"x", sync=False)  # type: ignore[arg-type]
    assert list(versions.items()) == []


def test_failed_encoding_leaves_batch_unchanged(db: Database) -> None:
    ints = db.table(U64_TABLE)
    batch = db.batch()
    batch.put(ints, 1, "one")
    with pytest.raises(StorageEncodeError):
        batch.put(ints, -1, "minus one")
    with pytest.raises(StorageEncodeError):
        batch.put(ints, 2, 2)  # type: ignore[misc]
    assert len(batch) == 1
    db.write(batch, sync=False)
    assert list(ints.items()) == [(1, "one")]


def test_table_items_snapshot_is_taken_at_call(db: Database) -> None:
    ints = db.table(U64_TABLE)
    for n in (1, 2, 3):
        ints.put(n, "old", sync=False)
    items = ints.items()  # not advanced yet
    keys = ints.keys(reverse=True)
    ints.put(4, "new", sync=False)
    ints.put(2, "changed", sync=False)
    ints.delete(3, sync=False)
    assert list(items) == [(1, "old"), (2, "old"), (3, "old")]
    assert list(keys) == [3, 2, 1]


def test_closed_database(db: Database) -> None:
    ints = db.table(U64_TABLE)
    ints.put(1, "one", sync=False)
    values = ints.values()
    db.close()
    db.close()
    assert db.closed
    for call in (
        lambda: ints.get(1),
        lambda: ints.put(2, "two", sync=False),
        lambda: ints.first(),
        lambda: db.batch(),
        lambda: next(values),
    ):
        with pytest.raises(StorageClosedError):
            call()
