"""The lock of a network directory: one process at a time runs or rewrites a network.

`soma start` holds it for as long as the network runs, and `soma genesis` and a
regenesis take it before they write or delete anything, so a regenesis can never wipe
the stores under running validators (which leaves RocksDB corrupt). It is an advisory
`flock` on `soma.lock`, which the kernel releases when its holders die, however they
die: a killed `soma start` never leaves a stale lock behind. The file holds the pid of
the process that took it, for the message that tells a second command who holds it.

`soma start` hands the open lock to its validators: the lock is held until the last of
them has exited, so a new start cannot open stores that a dying validator still has
open. A node run by hand (`soma node --config D/validator-0.yaml`) holds it shared:
several such nodes run side by side, and none of them can be wiped from under.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from soma.node.layout import LOCK_FILE
from soma.types.error import SomaError


class NetworkRunningError(SomaError):
    """The network directory is locked by another process."""

    code = "NETWORK_RUNNING"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip())
    return None


def _running_error(root: Path, pid: int | None) -> NetworkRunningError:
    if pid is None:
        return NetworkRunningError(f"network in {root} is running")
    if _pid_alive(pid):
        return NetworkRunningError(f"network in {root} is running (pid {pid})")
    return NetworkRunningError(
        f"network in {root} is still in use: its `soma start` (pid {pid}) has exited and "
        "its nodes are stopping; try again in a few seconds"
    )


def lock_holder(root: Path) -> int | None:
    """The pid recorded by whoever holds the lock of `root` (0 if it cannot be read),
    or None when nobody holds it."""
    try:
        fd = os.open(root / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class NetworkLock:
    """The lock of one network directory (created if missing): exclusive for what runs
    or rewrites the whole network, `shared` for a node run by hand in it."""

    def __init__(self, root: Path, shared: bool = False) -> None:
        self.root = root
        self.shared = shared
        self.fd: int | None = None
        self._created: list[Path] = []

    def acquire(self) -> None:
        """Take the lock or raise `NetworkRunningError` naming the holder's pid."""
        if self.fd is not None:
            return
        missing = [p for p in (self.root, *self.root.parents) if not p.exists()]
        self.root.mkdir(parents=True, exist_ok=True)
        lock_path = self.root / LOCK_FILE
        if not lock_path.exists():
            missing.insert(0, lock_path)
        self._created = missing
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            self._created = []  # someone holds it: what exists is theirs
            raise _running_error(self.root, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self.fd = fd

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def release_and_tidy(self) -> None:
        """Release, and remove the lock file and the directories that `acquire`
        created if the command wrote nothing else there (a refused `soma genesis` on a
        new directory leaves nothing behind)."""
        created, self._created = self._created, []
        lock_path = self.root / LOCK_FILE
        alone = lock_path.exists() and [e.name for e in self.root.iterdir()] == [LOCK_FILE]
        if alone and lock_path in created and self.fd is not None:
            lock_path.unlink()
        self.release()
        for path in created:
            if path != lock_path and path.is_dir():
                with contextlib.suppress(OSError):
                    path.rmdir()  # only while empty

    def __enter__(self) -> NetworkLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
