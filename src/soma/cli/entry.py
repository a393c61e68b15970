"""The `soma` console script: Ctrl-C is clean from the first moment.

This module imports nothing but the standard library's signal handling, so the
handler below is in place before anything slow loads: a Ctrl-C while the command's
modules are imported prints one line and exits 130 (nothing has started that would
need stopping yet). `soma.cli.main.run` then takes over Ctrl-C for the command itself.
"""

from __future__ import annotations

import os
import signal
from types import FrameType


def _exit_at_once(signum: int, _: FrameType | None) -> None:
    os.write(2, b"interrupted\n")
    os._exit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGINT, _exit_at_once)
    # typer builds its option parsers with pydantic, whose first use looks for plugins
    # in the entry points of every installed distribution: tens of milliseconds of a
    # quick command, for plugins soma never uses. An explicit setting wins.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from soma.cli.main import main as run_soma

    run_soma()
