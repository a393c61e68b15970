"""Tuning of the C allocator for a node process.

A validator moves blocks of hundreds of kilobytes to megabytes through Python `bytes`,
gRPC buffers and RocksDB batches many times a second. With glibc's defaults, allocations
that large are served by `mmap` (or by growing the heap, which is trimmed back as soon as
they are freed), so every new block lands in fresh pages the kernel must fault in and
zero: measured here, a third of a validator's CPU went to zeroing pages under load.
Keeping freed memory in the process instead (a high mmap threshold, no trimming of a
heap top below 1 GiB, extra padding when the heap grows) removes that cost; the memory
is reused by the next block rather than returned to the kernel and asked for again.

`tune_allocator` is called once when a node or benchmark process starts. It does nothing
where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

#: The largest mmap threshold glibc accepts on 64-bit systems.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024
TOP_PAD = 64 * 1024 * 1024


def tune_allocator() -> bool:
    """Apply the settings above; True if the C library took all of them."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_TOP_PAD, TOP_PAD),
    )
    ok = all(mallopt(param, value) == 1 for param, value in settings)
    if not ok:
        logger.info("the C library refused some allocator settings; running with defaults")
    return ok
