"""`soma start`: run a local network (see soma.node.start).

Heavy modules (the node, gRPC, the HTTP stack) are imported inside the command, so
`soma --help` and the client commands do not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soma.cli.output import fail


def start(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Network directory (default: SOMA_DIR or ~/.soma/network)."),
    ] = None,
    validators: Annotated[
        int | None, typer.Option("--validators", help="Validators (4 for a new network).")
    ] = None,
    epoch_duration_ms: Annotated[
        int | None,
        typer.Option(
            "--epoch-duration-ms",
            help="Length of an epoch in milliseconds, for a new network (default 24 h).",
        ),
    ] = None,
    min_validator_stake: Annotated[
        int | None,
        typer.Option(
            "--min-validator-stake",
            help="Least stake of a validator, for a new network (default: 1,000 fees).",
        ),
    ] = None,
    force_regenesis: Annotated[
        bool,
        typer.Option(
            "--force-regenesis",
            help="Delete the (stopped) network in the directory and start a new one.",
        ),
    ] = False,
) -> None:
    """Start a local network: validators, the HTTP API and a faucet. Ctrl-C stops it."""
    import asyncio
    import logging
    import sys

    from soma.cli.genesis import check_genesis_numbers
    from soma.node.dir_lock import NetworkLock
    from soma.node.layout import resolve_directory
    from soma.node.ports import move_taken_ports
    from soma.node.start import GenesisChoices, prepare_network, run_local_network
    from soma.types.error import SomaError
    from soma.utils.allocator import tune_allocator
    from soma.utils.gc_tuning import tune_gc
    from soma.utils.interrupt import deferred_interrupts

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if validators is not None and not 1 <= validators <= 100:
        fail("--validators must be 1 to 100", code=2)
    check_genesis_numbers(epoch_duration_ms, min_validator_stake)
    choices = GenesisChoices(epoch_duration_ms, min_validator_stake)
    root = resolve_directory(directory)
    tune_allocator()
    tune_gc()

    def ready(api_url: str, funded: list[str]) -> None:
        print(f"soma network in {root}", flush=True)
        print(f"API {api_url}", flush=True)
        for address in funded:
            print(f"funded {address}", flush=True)
        print("press Ctrl-C to stop", flush=True)

    lock = NetworkLock(root)
    try:
        lock.acquire()
        count = prepare_network(root, validators, force_regenesis, choices)
        with deferred_interrupts():  # several files change together
            notices = move_taken_ports(root, count)
        for notice in notices:
            typer.echo(f"note: {notice}", err=True)
        status = asyncio.run(run_local_network(root, count, lock.fd, ready))
    except SomaError as e:
        fail(e.message, code=1)
    except OSError as e:
        fail(str(e), code=1)
    finally:
        lock.release_and_tidy()
    if status >= 128:
        typer.echo(f"stopped: the network in {root} is down", err=True)
    sys.exit(status)
