"""`soma start`: run a local network (see soma.node.start).

What it prints on stdout, once the network is ready: `soma network in D`, `API <url>`,
a `funded <address>` line a funded account, a `metrics <node> <url>` line a node,
`logs <D>/logs` (each node's log file) and `press Ctrl-C to stop`; scripts and tests
read these lines. Then, on a terminal, a live panel of the nodes (`soma.cli.dashboard`);
otherwise (a file, a pipe) a plain `status ...` line every 10 s, never a control code.
Its own log lines (a node restarted) go to stderr, at `--log-level`/`--log-format` like
the nodes'.

Heavy modules (the node, gRPC, the HTTP stack) are imported inside the command, so
`soma --help` and the client commands do not pay for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from soma.cli.log_options import LogFormatOption, LogLevelOption, checked_log_settings
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
    log_level: LogLevelOption = "INFO",
    log_format: LogFormatOption = "text",
) -> None:
    """Start a local network: validators, the HTTP API and a faucet. Ctrl-C stops it."""
    import asyncio
    import sys

    from soma.cli.dashboard import follow_started_network
    from soma.cli.dashboard_model import metrics_lines
    from soma.cli.genesis import check_genesis_numbers
    from soma.node.dir_lock import NetworkLock
    from soma.node.layout import LOGS_DIR, resolve_directory
    from soma.node.node_list import list_nodes
    from soma.node.ports import move_taken_ports
    from soma.node.start import GenesisChoices, prepare_network, run_local_network
    from soma.types.error import SomaError
    from soma.utils.allocator import tune_allocator
    from soma.utils.gc_tuning import tune_gc
    from soma.utils.interrupt import deferred_interrupts
    from soma.utils.log_setup import configure_logging

    log_settings = checked_log_settings(log_level, log_format)
    configure_logging(log_settings)
    if validators is not None and not 1 <= validators <= 100:
        fail("--validators must be 1 to 100", code=2)
    check_genesis_numbers(epoch_duration_ms, min_validator_stake)
    choices = GenesisChoices(epoch_duration_ms, min_validator_stake)
    root = resolve_directory(directory)
    tune_allocator()
    tune_gc()

    on_terminal = sys.stdout.isatty()
    api: list[str] = []

    def ready(api_url: str, funded: list[str]) -> None:
        api.append(api_url)
        print(f"soma network in {root}", flush=True)
        print(f"API {api_url}", flush=True)
        for address in funded:
            print(f"funded {address}", flush=True)
        for line in metrics_lines(list_nodes(root)):
            print(line, flush=True)
        print(f"logs {root / LOGS_DIR}", flush=True)
        print("press Ctrl-C to stop", flush=True)

    async def dashboard() -> None:
        await follow_started_network(root, api[0], on_terminal)

    lock = NetworkLock(root)
    try:
        lock.acquire()
        count = prepare_network(root, validators, force_regenesis, choices)
        with deferred_interrupts():  # several files change together
            notices = move_taken_ports(root, count)
        for notice in notices:
            typer.echo(f"note: {notice}", err=True)
        status = asyncio.run(
            run_local_network(root, count, lock.fd, ready, log_settings, dashboard)
        )
    except SomaError as e:
        fail(e.message, code=1)
    except OSError as e:
        fail(str(e), code=1)
    finally:
        lock.release_and_tidy()
    if status >= 128:
        typer.echo(f"stopped: the network in {root} is down", err=True)
    sys.exit(status)
