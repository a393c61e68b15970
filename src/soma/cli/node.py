"""`soma node --config PATH`: run one node until SIGINT or SIGTERM, logging to stderr at
`--log-level`, as text or JSON lines (`--log-format`, see `soma.utils.log_setup`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from soma.cli.log_options import LogFormatOption, LogLevelOption, checked_log_settings
from soma.node.fullnode import FullNode
from soma.node.node import SomaNode, run_node
from soma.node.parent import die_with_parent
from soma.types.config import load_node_config
from soma.types.error import SomaError
from soma.utils.allocator import tune_allocator
from soma.utils.gc_tuning import tune_gc
from soma.utils.log_setup import configure_logging


def node(
    config: Annotated[Path, typer.Option("--config", help="The node's YAML config.")],
    log_level: LogLevelOption = "INFO",
    log_format: LogFormatOption = "text",
) -> None:
    """Run a node from its config: a validator (consensus, execution, the validator
    service) or a fullnode (state sync, execution, the HTTP API)."""
    configure_logging(checked_log_settings(log_level, log_format))
    try:
        loaded = load_node_config(config)
    except SomaError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    die_with_parent()
    held = _hold_network_directory(loaded.path)
    tune_allocator()
    tune_gc()

    def ready(running: SomaNode | FullNode) -> None:
        print(f"READY {running.ready_port}", flush=True)

    try:
        status = asyncio.run(run_node(loaded, ready))
    except SomaError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    except OSError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    del held  # the directory stays locked until here
    sys.exit(status)


def _hold_network_directory(config_path: Path) -> object:
    """A node run by hand inside a network directory holds the directory's lock shared
    (see `soma.node.dir_lock`): a regenesis cannot wipe its store while it runs. Nodes
    that `soma start` launched share its lock already."""
    import os

    from soma.node.dir_lock import NetworkLock, NetworkRunningError
    from soma.node.layout import GENESIS_FILE
    from soma.node.parent import PARENT_PID_ENV

    root = config_path.parent
    if os.environ.get(PARENT_PID_ENV) or not (root / GENESIS_FILE).is_file():
        return None
    lock = NetworkLock(root, shared=True)
    try:
        lock.acquire()
    except NetworkRunningError as e:
        typer.echo(f"error: {e.message}: its nodes are run by that process", err=True)
        raise typer.Exit(code=1) from None
    return lock
