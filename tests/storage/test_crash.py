"""Crash consistency: a writer killed with SIGKILL mid-stream loses no committed batch and
never leaves part of one.

A child process (crash_writer.py) writes numbered atomic batches across three tables and
reports each one after `write` returns. The parent kills it at a random moment, reopens
the database and checks that the batches on disk are exactly 0..M, each complete, with M
at least the last batch the child reported. Each database is killed several times so
that recovery after a crash is itself crashed into.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from soma.storage import Database
from tests.storage.crash_writer import ENTRIES_PER_BATCH, TABLES, entry_value

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS_PER_MODE = 10
WATCHDOG_S = 15.0


def run_and_kill(path: Path, sync: bool, rng: random.Random) -> tuple[int, int]:
    """Start a writer, kill it after a random number of batches plus a random delay;
    return (first batch it wrote, last batch it reported committed; -1 if none)."""
    with subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "1" if sync else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        stdout, stderr = child.stdout, child.stderr
        assert stdout is not None and stderr is not None
        # If the child hangs without output, kill it so readline() returns and we fail.
        watchdog = threading.Timer(WATCHDOG_S, child.kill)
        watchdog.start()
        try:
            first_line = stdout.readline()
            assert first_line.startswith("start "), first_line + stderr.read()
            first = int(first_line.split()[1])
            committed = first - 1
            stop_after = first + rng.randint(1, 30) - 1
            while committed < stop_after:
                line = stdout.readline()
                assert line, f"writer exited early: {stderr.read()}"
                committed = int(line)
            time.sleep(rng.uniform(0, 0.02))  # land somewhere inside a later batch
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
            assert child.returncode == -signal.SIGKILL, "writer exited before being killed"
            # Read through the text wrapper (not communicate(), which bypasses what
            # readline() already buffered) up to the EOF left by the dead writer.
            rest = stdout.read()
            # Only complete lines count: a line cut by the kill was never fully reported.
            for line in rest.splitlines(keepends=True):
                if line.endswith("\n"):
                    committed = int(line)
            return first, committed
        finally:
            watchdog.cancel()
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)


def check_database(path: Path) -> int:
    """Assert every batch is whole and the batches are 0..M; return M (-1 if none)."""
    with Database.open_rocksdb(path, TABLES) as db:
        entries, index, latest = (db.table(spec) for spec in TABLES)
        per_batch: Counter[int] = Counter()
        for (n, i), value in entries.items():
            assert value == entry_value(n, i), f"batch {n} entry {i} has a foreign value"
            per_batch[n] += 1
        indexed = dict(index.items())
        present = sorted(per_batch)
        last = present[-1] if present else -1
        assert present == list(range(last + 1)), "batches on disk are not a prefix 0..M"
        torn = {n: count for n, count in per_batch.items() if count != ENTRIES_PER_BATCH}
        assert not torn, f"partial batches (batch: entries found): {torn}"
        assert sorted(indexed) == present, "index and entries disagree"
        assert set(indexed.values()) <= {ENTRIES_PER_BATCH}
        assert list(latest.keys()) == ([last] if last >= 0 else []), "latest is torn"
        return last


@pytest.mark.parametrize("sync", [True, False], ids=["sync", "nosync"])
def test_killed_writer_leaves_whole_batches(tmp_path: Path, sync: bool) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    path = tmp_path / "db"
    previous = -1
    for kill in range(KILLS_PER_MODE):
        first, reported = run_and_kill(path, sync, rng)
        context = f"seed={seed} kill={kill} sync={sync}"
        assert first == previous + 1, f"writer resumed at {first}, not {previous + 1} ({context})"
        last = check_database(path)
        assert last >= reported, f"batch {reported} was reported committed but lost ({context})"
        previous = last
