"""Tuning of Python's cyclic garbage collector for a node process.

A validator allocates millions of small container objects per second (decoded
transactions, objects, effects, futures) and keeps hundreds of thousands alive (caches,
the DAG). With the default thresholds the collector runs a young-generation pass every
700 allocations and an older pass every few thousand, and each older pass walks the
growing live heap: measured with `bench/execution.py`, about a fifth of the CPU of
executing a transfer. Almost none of that garbage is cyclic (it is freed by reference
counting), so collecting far less often loses nothing but time. Objects alive at start-up
(modules, the genesis state) are frozen out of every collection.
"""

from __future__ import annotations

import gc

#: Allocations between young-generation passes, and passes between older ones.
THRESHOLDS = (200_000, 50, 100)


def tune_gc() -> None:
    """Apply the thresholds above and freeze what is alive now."""
    gc.set_threshold(*THRESHOLDS)
    gc.freeze()
