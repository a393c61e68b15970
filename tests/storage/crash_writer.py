"""Child process for test_crash.py: writes numbered atomic batches until it is killed.

Usage: python crash_writer.py DB_PATH SYNC(0|1)

Batch N, written with one `Database.write`, touches three tables:

* `entries`: puts keys (N, 0) .. (N, ENTRIES_PER_BATCH - 1), each value tagged with N;
* `index`: puts key N with value ENTRIES_PER_BATCH;
* `latest`: puts key N and deletes key N - 1, so exactly one key remains.

A torn batch would therefore show as an N with some but not all of its entries, an
entry without its index key (or the reverse), or zero or two keys in `latest`.
The writer resumes after the last batch already on disk and prints "start N" and then
each N once `write` has returned, so the parent knows what was committed.
"""

from __future__ import annotations

import sys
import time

from soma.storage import RAW_BYTES, U8_BE, U64_BE, Database, TableSpec, tuple_codec

ENTRIES = TableSpec("entries", tuple_codec(U64_BE, U8_BE), RAW_BYTES)
INDEX = TableSpec("index", U64_BE, U64_BE)
LATEST = TableSpec("latest", U64_BE, RAW_BYTES)
TABLES = (ENTRIES, INDEX, LATEST)
ENTRIES_PER_BATCH = 4
MAX_RUNTIME_S = 30.0  # never outlive a parent that died without killing us


def entry_value(n: int, i: int) -> bytes:
    """About 1 KB, so a batch spans several KB of write-ahead log."""
    return (n.to_bytes(8, "big") + bytes([i])) * 111


def main(path: str, sync: bool) -> None:
    db = Database.open_rocksdb(path, TABLES)
    entries, index, latest = (db.table(spec) for spec in TABLES)
    last = index.last()
    n = 0 if last is None else last[0] + 1
    print(f"start {n}", flush=True)
    deadline = time.monotonic() + MAX_RUNTIME_S
    while time.monotonic() < deadline:
        batch = db.batch()
        for i in range(ENTRIES_PER_BATCH):
            batch.put(entries, (n, i), entry_value(n, i))
        batch.put(index, n, ENTRIES_PER_BATCH)
        batch.put(latest, n, b"")
        if n > 0:
            batch.delete(latest, n - 1)
        db.write(batch, sync=sync)
        print(n, flush=True)
        n += 1
    db.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "1")
