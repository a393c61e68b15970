"""RocksDB-specific behaviour: opening, locking, column families and closing.

What both engines share is in test_conformance.py; this file covers what only a real
on-disk database can get wrong.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from soma.storage import RocksDBEngine
from soma.types.error import StorageClosedError, StorageOpenError


def test_open_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "db"
    with RocksDBEngine(str(path), ["a"]) as engine:
        assert engine.path == str(path)
        engine.put("a", b"k", b"v", sync=False)
    assert (path / "CURRENT").exists()


def test_open_on_a_file_is_a_typed_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"not a database")
    with pytest.raises(StorageOpenError, match="cannot open"):
        RocksDBEngine(blocker, ["a"])
    with pytest.raises(StorageOpenError):
        RocksDBEngine(blocker / "db", ["a"])


def test_second_open_in_same_process_reports_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "db"
    first = RocksDBEngine(path, ["a"])
    try:
        with pytest.raises(StorageOpenError, match="lock") as info:
            RocksDBEngine(path, ["a"])
        assert info.value.code == "STORAGE_OPEN"
    finally:
        first.close()
    RocksDBEngine(path, ["a"]).close()  # released by close()


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "db"
    holder = textwrap.dedent(
        f"""
        import sys
        from soma.storage import RocksDBEngine
        engine = RocksDBEngine({str(path)!r}, ["a"])
        print("ready", flush=True)
        sys.stdin.read()  # hold the lock until the parent closes our stdin or kills us
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", holder],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr
        with pytest.raises(StorageOpenError, match="another process"):
            RocksDBEngine(path, ["a"])
    finally:
        child.kill()
        child.communicate(timeout=10)
    RocksDBEngine(path, ["a"]).close()  # the dead process's lock is gone


def test_close_releases_the_lock_despite_live_iterators(tmp_path: Path) -> None:
    path = tmp_path / "db"
    engine = RocksDBEngine(path, ["a", "b"])
    for i in range(5):
        engine.put("a", bytes([i]), b"", sync=False)
    untouched = engine.iterate("a")
    partial = engine.iterate("a", b"\x01", b"\x04")
    next(partial)
    exhausted = engine.iterate("b")
    assert list(exhausted) == []
    backward = engine.iterate("a", b"\x04", b"\x00", reverse=True)
    next(backward)
    engine.close()
    reopened = RocksDBEngine(path, ["a", "b"])
    try:
        for iterator in (untouched, partial, exhausted, backward):
            with pytest.raises(StorageClosedError):
                next(iterator)
        assert len(list(reopened.iterate("a"))) == 5
    finally:
        reopened.close()


def test_undeclared_column_families_survive(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with RocksDBEngine(path, ["a", "retired"]) as engine:
        engine.put("retired", b"k", b"kept", sync=False)
    with RocksDBEngine(path, ["a"]) as engine:
        assert engine.tables == ("a",)
        engine.put("a", b"k", b"v", sync=False)
    with RocksDBEngine(path, ["retired", "a"]) as engine:
        assert engine.get("retired", b"k") == b"kept"
        assert engine.get("a", b"k") == b"v"


def test_default_column_family_can_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with RocksDBEngine(path, ["default", "a"]) as engine:
        batch = engine.batch()
        batch.put("default", b"k", b"in default")
        batch.put("a", b"k", b"in a")
        engine.write(batch, sync=True)
    with RocksDBEngine(path, ["default", "a"]) as engine:
        assert engine.get("default", b"k") == b"in default"
        assert engine.get("a", b"k") == b"in a"
        assert list(engine.iterate("default")) == [(b"k", b"in default")]


def test_bounded_scans_survive_garbage_collection_of_their_bounds(tmp_path: Path) -> None:
    """rocksdict iterators point into the bound bytes without owning them; the engine
    must keep them alive (a freed bound made scans overrun their end)."""
    with RocksDBEngine(tmp_path / "db", ["a"]) as engine:
        for n in range(0, 3000, 7):
            engine.put("a", n.to_bytes(8, "big"), b"", sync=False)
        for _ in range(20):
            iterator = engine.iterate("a", (5).to_bytes(8, "big"), (2000).to_bytes(8, "big"))
            churn = [bytes(range(256)) * 10 for _ in range(200)]
            got = [int.from_bytes(k, "big") for k, _ in iterator]
            assert got == [n for n in range(0, 3000, 7) if 5 <= n < 2000]
            del churn
