"""Model-based conformance: both engines agree with a plain Python model.

Hypothesis drives random sequences of puts, deletes, batches (with range deletions),
point reads, bounded scans in both directions, long-lived iterators consumed while the
table changes, and RocksDB reopens; after every step the memory engine, the RocksDB
engine and a dict-of-dicts model must all agree.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from soma.storage import Engine, MemoryEngine, RocksDBEngine
from soma.types.error import StorageClosedError

TABLES = ["a", "b"]
# A small alphabet, with bytes on both sides of 0x80, so keys collide, share prefixes
# and land on range bounds often.
keys = st.lists(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]), max_size=3).map(bytes)
bounds = st.none() | keys
values = st.binary(max_size=4)
tables = st.sampled_from(TABLES)


def _sorted_pair(pair: tuple[bytes, bytes]) -> tuple[bytes, bytes]:
    return (pair[0], pair[1]) if pair[0] <= pair[1] else (pair[1], pair[0])


batch_ops = st.one_of(
    st.tuples(st.just("put"), tables, keys, values),
    st.tuples(st.just("delete"), tables, keys),
    st.tuples(st.just("delete_range"), tables, st.tuples(keys, keys).map(_sorted_pair)),
)


def model_scan(
    table: dict[bytes, bytes], start: bytes | None, end: bytes | None, reverse: bool
) -> list[tuple[bytes, bytes]]:
    items = sorted(table.items(), reverse=reverse)
    if reverse:
        return [
            (k, v) for k, v in items if (start is None or k <= start) and (end is None or k > end)
        ]
    return [(k, v) for k, v in items if (start is None or k >= start) and (end is None or k < end)]


class EnginesAgreeWithModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "db"
        self.memory = MemoryEngine(TABLES)
        self.rocks = RocksDBEngine(self.path, TABLES)
        self.model: dict[str, dict[bytes, bytes]] = {name: {} for name in TABLES}
        # Open iterators: one per engine, plus what they must still yield.
        self.iterators: list[tuple[list[Any], list[tuple[bytes, bytes]]]] = []

    @property
    def engines(self) -> list[Engine]:
        return [self.memory, self.rocks]

    def _snapshot_check(self, touched: list[str], write: Callable[[], None]) -> None:
        """Run `write`, checking that iterators opened just before it still see the
        tables as they were (the snapshot every write must leave intact)."""
        before = {table: sorted(self.model[table].items()) for table in touched}
        opened = {table: [e.iterate(table) for e in self.engines] for table in touched}
        write()
        for table in touched:
            for iterator in opened[table]:
                assert list(iterator) == before[table]

    @rule(table=tables, key=keys, value=values, sync=st.integers(0, 9).map(lambda n: n == 0))
    def put(self, table: str, key: bytes, value: bytes, sync: bool) -> None:
        def write() -> None:
            for engine in self.engines:
                engine.put(table, key, value, sync=sync)
            self.model[table][key] = value

        self._snapshot_check([table], write)

    @rule(table=tables, key=keys)
    def delete(self, table: str, key: bytes) -> None:
        def write() -> None:
            for engine in self.engines:
                engine.delete(table, key, sync=False)
            self.model[table].pop(key, None)

        self._snapshot_check([table], write)

    @rule(ops=st.lists(batch_ops, max_size=8))
    def write_batch(self, ops: list[tuple[Any, ...]]) -> None:
        self._snapshot_check(TABLES, lambda: self._write_batch(ops))

    def _write_batch(self, ops: list[tuple[Any, ...]]) -> None:
        for engine in self.engines:
            batch = engine.batch()
            for op in ops:
                if op[0] == "put":
                    batch.put(op[1], op[2], op[3])
                elif op[0] == "delete":
                    batch.delete(op[1], op[2])
                else:
                    batch.delete_range(op[1], *op[2])
            engine.write(batch, sync=False)
        for op in ops:
            table = self.model[op[1]]
            if op[0] == "put":
                table[op[2]] = op[3]
            elif op[0] == "delete":
                table.pop(op[2], None)
            else:
                start, end = op[2]
                for key in [k for k in table if start <= k < end]:
                    del table[key]

    @rule(table=tables, probe=st.lists(keys, max_size=5))
    def point_reads(self, table: str, probe: list[bytes]) -> None:
        expected = [self.model[table].get(k) for k in probe]
        for engine in self.engines:
            assert engine.multi_get(table, probe) == expected
            assert [engine.get(table, k) for k in probe] == expected
            assert [engine.contains(table, k) for k in probe] == [v is not None for v in expected]

    @rule(table=tables, start=bounds, end=bounds, reverse=st.booleans())
    def scan(self, table: str, start: bytes | None, end: bytes | None, reverse: bool) -> None:
        expected = model_scan(self.model[table], start, end, reverse)
        for engine in self.engines:
            assert list(engine.iterate(table, start, end, reverse=reverse)) == expected

    @rule(table=tables, start=bounds, end=bounds, reverse=st.booleans())
    def open_iterator(
        self, table: str, start: bytes | None, end: bytes | None, reverse: bool
    ) -> None:
        expected = model_scan(self.model[table], start, end, reverse)
        opened = [engine.iterate(table, start, end, reverse=reverse) for engine in self.engines]
        self.iterators.append((opened, expected))

    @precondition(lambda self: bool(self.iterators))
    @rule(which=st.integers(min_value=0), steps=st.integers(min_value=1, max_value=4))
    def advance_iterator(self, which: int, steps: int) -> None:
        index = which % len(self.iterators)
        opened, expected = self.iterators[index]
        want, rest = expected[:steps], expected[steps:]
        for iterator in opened:
            assert [item for _, item in zip(range(steps), iterator, strict=False)] == want
        if rest:
            self.iterators[index] = (opened, rest)
        else:
            for iterator in opened:
                assert next(iterator, None) is None
            del self.iterators[index]

    @rule(roll=st.integers(0, 3))
    def reopen_rocksdb(self, roll: int) -> None:
        if roll:  # reopening costs milliseconds: do it on a quarter of the draws only
            return
        rocks_iterators = [opened[1] for opened, _ in self.iterators]
        self.rocks.close()
        for iterator in rocks_iterators:
            with pytest.raises(StorageClosedError):
                next(iterator)
        self.iterators = []
        self.rocks = RocksDBEngine(self.path, TABLES)

    @invariant()
    def contents_agree(self) -> None:
        for table in TABLES:
            expected = sorted(self.model[table].items())
            for engine in self.engines:
                assert list(engine.iterate(table)) == expected

    def teardown(self) -> None:
        self.iterators = []
        for engine in self.engines:
            engine.close()
        self.tmp.cleanup()


EnginesAgreeWithModel.TestCase.settings = settings(
    max_examples=30, stateful_step_count=30, deadline=None
)
TestEnginesAgreeWithModel = EnginesAgreeWithModel.TestCase
