"""Fixtures that run the same storage tests against every engine.

`open_engine` / `open_db` open (and on later calls reopen) a database of the engine under
test at one fixed location, and close whatever is still open at teardown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from soma.storage import Database, Engine, MemoryEngine, RocksDBEngine, TableSpec

ENGINES = ["memory", "rocksdb"]

OpenEngine = Callable[[Sequence[str]], Engine]
OpenDb = Callable[[Sequence[TableSpec[Any, Any]]], Database]


@pytest.fixture(params=ENGINES)
def engine_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def open_engine(engine_kind: str, tmp_path: Path) -> Iterator[OpenEngine]:
    opened: list[Engine] = []

    def _open(tables: Sequence[str]) -> Engine:
        engine: Engine
        if engine_kind == "memory":
            engine = MemoryEngine(tables)
        else:
            engine = RocksDBEngine(tmp_path / "db", tables)
        opened.append(engine)
        return engine

    yield _open
    for engine in opened:
        engine.close()


@pytest.fixture
def open_db(engine_kind: str, tmp_path: Path) -> Iterator[OpenDb]:
    opened: list[Database] = []

    def _open(tables: Sequence[TableSpec[Any, Any]]) -> Database:
        db = Database.open(engine_kind, tables, tmp_path / "db")  # type: ignore[arg-type]
        opened.append(db)
        return db

    yield _open
    for db in opened:
        db.close()


@pytest.fixture
def engine(open_engine: OpenEngine) -> Engine:
    """An engine with three tables: "a", "b" and "c"."""
    return open_engine(["a", "b", "c"])
