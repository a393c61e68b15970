"""Suite-wide guard: a test that hangs ends the run with every thread's stack.

A hung test would otherwise hold CI until its overall limit, with no sign of where. The
limit is far above any test's normal time (the slowest default test takes under a
minute); slow sweeps get more."""

from __future__ import annotations

import faulthandler
import sys
from collections.abc import Iterator

import pytest

#: Seconds one test may take before the run is ended with its stacks.
HANG_LIMIT_S = 300
SLOW_HANG_LIMIT_S = 3600


@pytest.fixture(autouse=True)
def _hang_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    limit = SLOW_HANG_LIMIT_S if request.node.get_closest_marker("slow") else HANG_LIMIT_S
    faulthandler.dump_traceback_later(limit, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
