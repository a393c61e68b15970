"""`soma start`: run a local network (see soma.node.start)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from soma.node.start import default_directory, run_local_network
from soma.types.error import SomaError
from soma.utils.allocator import tune_allocator
from soma.utils.gc_tuning import tune_gc


def start(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Network directory (default: SOMA_DIR or ~/.soma/network)."),
    ] = None,
    validators: Annotated[
        int | None, typer.Option("--validators", help="Validators (4 for a new network).")
    ] = None,
    force_regenesis: Annotated[
        bool, typer.Option("--force-regenesis", help="Wipe the network and start a new one.")
    ] = False,
) -> None:
    """Start a local network: validators, the HTTP API and a faucet. Ctrl-C stops it."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if validators is not None and not 1 <= validators <= 100:
        typer.echo("error: --validators must be 1 to 100", err=True)
        raise typer.Exit(code=2)
    root = (directory or default_directory()).expanduser()
    tune_allocator()
    tune_gc()

    def ready(api_url: str, funded: list[str]) -> None:
        print(f"soma network in {root}", flush=True)
        print(f"API {api_url}", flush=True)
        for address in funded:
            print(f"funded {address}", flush=True)
        print("press Ctrl-C to stop", flush=True)

    try:
        status = asyncio.run(run_local_network(root, validators, force_regenesis, ready))
    except SomaError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    except OSError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    sys.exit(status)
