"""In-memory engine specifics: copy-on-write happens only for a live iterator.

What both engines share (including snapshot semantics) is in test_conformance.py and
test_model.py. These tests check the cost side structurally, through
`MemoryEngine.snapshot_copies` and the identity of the table's key list, rather than by
timing: a write after an iterator that is exhausted, dropped or empty must not copy the
table, because the simulator scans and then writes all the time.
"""

from __future__ import annotations

import gc

import pytest

from soma.storage import RAW_BYTES, U64_BE, Database, MemoryEngine, TableSpec


def filled(n: int = 100) -> MemoryEngine:
    engine = MemoryEngine(["a", "b"])
    batch = engine.batch()
    for i in range(n):
        batch.put("a", U64_BE.encode(i), b"v")
    engine.write(batch, sync=False)
    return engine


def key_list(engine: MemoryEngine, table: str = "a") -> list[bytes]:
    """The table's current key list (internal): the same object means no copy."""
    return engine._tables[table].keys


def test_write_after_exhausted_iterator_does_not_copy() -> None:
    engine = filled()
    before = key_list(engine)
    assert len(list(engine.iterate("a"))) == 100
    assert len(list(engine.iterate("a", reverse=True))) == 100
    engine.put("a", b"new", b"", sync=False)
    engine.delete("a", U64_BE.encode(0), sync=False)
    batch = engine.batch()
    batch.delete_range("a", U64_BE.encode(10), U64_BE.encode(20))
    engine.write(batch, sync=False)
    assert engine.snapshot_copies == 0
    assert key_list(engine) is before


def test_write_after_dropped_iterator_does_not_copy() -> None:
    engine = filled()
    before = key_list(engine)
    iterator = engine.iterate("a")
    next(iterator)
    del iterator
    gc.collect()  # not needed under reference counting; makes the point regardless
    engine.put("a", b"new", b"", sync=False)
    assert engine.snapshot_copies == 0
    assert key_list(engine) is before


def test_write_after_empty_range_does_not_copy() -> None:
    engine = filled()
    lo, hi = U64_BE.encode(5), U64_BE.encode(500)
    untouched = [
        engine.iterate("a", hi, lo),  # inverted bounds
        engine.iterate("a", hi),  # past the last key
        engine.iterate("a", lo, hi, reverse=True),  # inverted for reverse
        engine.iterate("b"),  # empty table
    ]
    engine.put("a", b"new", b"", sync=False)
    engine.put("b", b"new", b"", sync=False)
    assert engine.snapshot_copies == 0
    assert all(list(iterator) == [] for iterator in untouched)


def test_live_iterator_gets_one_copy_and_keeps_its_snapshot() -> None:
    engine = filled(3)
    iterator = engine.iterate("a")
    assert next(iterator)[0] == U64_BE.encode(0)
    engine.put("a", U64_BE.encode(1), b"changed", sync=False)  # copies once
    engine.put("a", U64_BE.encode(9), b"", sync=False)  # the new version has no reader
    engine.delete("a", U64_BE.encode(2), sync=False)
    assert engine.snapshot_copies == 1
    assert list(iterator) == [(U64_BE.encode(1), b"v"), (U64_BE.encode(2), b"v")]
    assert engine.get("a", U64_BE.encode(1)) == b"changed"


def test_old_readers_do_not_count_for_the_new_version() -> None:
    """An iterator on an old version leaving must not unprotect a newer iterator."""
    engine = filled(3)
    old = engine.iterate("a")
    engine.put("a", b"x", b"", sync=False)  # copy 1: `old` keeps version 1
    new = engine.iterate("a")
    del old  # leaves version 1's reader set, not version 2's
    engine.put("a", b"y", b"", sync=False)  # `new` is live: copy 2
    assert engine.snapshot_copies == 2
    assert [k for k, _ in new][-1] == b"x"


def test_only_tables_with_live_readers_are_copied() -> None:
    engine = filled()
    iterator = engine.iterate("a")
    engine.put("b", b"k", b"", sync=False)
    assert engine.snapshot_copies == 0
    engine.put("a", b"k", b"", sync=False)
    assert engine.snapshot_copies == 1
    del iterator


SPEC = TableSpec("a", U64_BE, RAW_BYTES)


@pytest.mark.parametrize("scans", [1, 200])
def test_typed_scan_then_write_never_copies(scans: int) -> None:
    """The simulator's pattern through the typed layer: `first`/`last` (abandoned
    generators), full scans and partial scans, each followed by a write."""
    db = Database(filled(), [SPEC])
    table = db.table(SPEC)
    engine = db.engine
    assert isinstance(engine, MemoryEngine)
    before = key_list(engine)
    for n in range(scans):
        assert table.first() is not None and table.last() is not None
        assert sum(1 for _ in table.keys(start=50)) >= 50
        partial = table.items()
        next(partial)
        del partial
        table.put(1000 + n, b"", sync=False)
    assert engine.snapshot_copies == 0
    assert key_list(engine) is before


def test_close_with_live_iterator() -> None:
    engine = filled()
    iterator = engine.iterate("a")
    engine.close()
    assert engine.snapshot_copies == 0
    del iterator  # releasing after close must not fail
