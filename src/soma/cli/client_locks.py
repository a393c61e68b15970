"""Client-side locks: one command at a time per sender address, and per keystore.

A transaction names the exact versions of the coins it spends. Two commands started at
once from one address read the same coin versions; if they also send the same amount
to the same recipient they build byte-identical transactions, which are one
transaction: both would report the same success, and only one transfer would happen.
Holding the sender's lock from reading its coins to the certificate makes concurrent
commands from one address run one after another, each on the versions the previous
one left, so every command that says "success" moved its own coins.

The keystore is read, extended and written back by `new-address`; its lock keeps two
of them from losing a key. Locks are `flock`s on files under the network directory's
`client-locks/`, released by the kernel whenever a command ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from soma.node.layout import CLIENT_LOCKS_DIR


@contextlib.contextmanager
def held(root: Path, name: str) -> Iterator[None]:
    """Hold the lock `name` of the network in `root`, waiting for it if needed."""
    directory = root / CLIENT_LOCKS_DIR
    directory.mkdir(exist_ok=True)
    fd = os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def sender(root: Path, address: str) -> contextlib.AbstractContextManager[None]:
    return held(root, f"sender-{address}")


def keystore(root: Path) -> contextlib.AbstractContextManager[None]:
    return held(root, "keystore")
