"""The `soma` command.

Sub-commands are added as the node grows (`start`, `node`, `client`, `genesis`, `bench`,
`sim`); each lives in its own module under `soma.cli` and is registered here. Errors a
user can cause (a bad argument, an unreadable key file) print one clear line and exit
with status 2, never a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from soma import __version__
from soma.cli.bench import bench_app
from soma.cli.client import client_app
from soma.cli.dag import dag_app
from soma.cli.genesis import genesis
from soma.cli.keytool import keytool_app
from soma.cli.node import node
from soma.cli.sim import sim
from soma.cli.start import start

app = typer.Typer(
    name="soma",
    help="A Byzantine fault tolerant blockchain node: Mysticeti consensus, Sui-style objects.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(keytool_app, name="keytool")
app.command("sim")(sim)
app.command("genesis")(genesis)
app.command("node")(node)
app.command("start")(start)
app.add_typer(client_app, name="client")
app.add_typer(dag_app, name="dag")
app.add_typer(bench_app, name="bench")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"soma {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """soma: run a validator or fullnode, start a local network, use the client."""
