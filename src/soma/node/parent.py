"""A node that `soma start` launched dies with it.

`soma start` puts its pid in the node's environment; the node asks the kernel (Linux
`PR_SET_PDEATHSIG`) for SIGTERM when that parent dies, so a killed `soma start` leaves
no validator running. Kept apart from `soma.node.start` so a node process does not
import the HTTP stack that only `soma start` needs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

#: Set in a node's environment: the pid of the `soma start` that owns it.
PARENT_PID_ENV = "SOMA_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Called by a node at start. Done in the child itself, not through `preexec_fn`:
    forking a process that runs gRPC threads and running Python before exec breaks
    gRPC's fork handlers."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != parent:
        # The parent died before the request took effect.
        os.kill(os.getpid(), signal.SIGTERM)
