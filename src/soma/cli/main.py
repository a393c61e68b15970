"""The `soma` command.

Each sub-command lives in its own module under `soma.cli` and is imported only when it
runs: `soma client status` must not pay for the node, gRPC or the HTTP server stack
that `soma start` needs, so `COMMANDS` names the modules and `LazyGroup` imports one
on demand.

How a command ends (see `soma.cli.output`): errors a user can cause print one line
(JSON with `--json`, usage errors included) and exit 2 for a bad invocation, 1 for a
failure; Ctrl-C at any moment, imports included, prints one line and exits 130,
never a traceback.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer

# typer carries its own copy of click: its commands are of these classes.
from typer._click.core import Command, Context
from typer._click.exceptions import ClickException
from typer._click.formatting import HelpFormatter
from typer.core import TyperGroup

from soma import __version__
from soma.cli.output import error_line, use_json_for, wants_json


@dataclasses.dataclass(frozen=True)
class CommandEntry:
    module: str
    attr: str
    help: str


COMMANDS: dict[str, CommandEntry] = {
    "start": CommandEntry(
        "soma.cli.start", "start", "Start a local network: validators, the HTTP API, a faucet."
    ),
    "client": CommandEntry(
        "soma.cli.client", "client_app", "Use a running network: addresses, coins, transfers."
    ),
    "node": CommandEntry("soma.cli.node", "node", "Run one node from its config."),
    "genesis": CommandEntry("soma.cli.genesis", "genesis", "Write the files of a new network."),
    "config": CommandEntry(
        "soma.cli.config", "config_app", "Configs for nodes of an existing network."
    ),
    "validator": CommandEntry(
        "soma.cli.validator", "validator_app", "Candidate validators for an existing network."
    ),
    "keytool": CommandEntry("soma.cli.keytool", "keytool_app", "Create and inspect key files."),
    "sim": CommandEntry("soma.cli.sim", "sim", "Run a deterministic simulated network."),
    "dag": CommandEntry("soma.cli.dag", "dag_app", "Inspect DAGs written in the DAG text format."),
    "bench": CommandEntry(
        "soma.cli.bench", "bench_app", "Benchmarks that run real validator processes."
    ),
}


def _as_click(obj: Any) -> Command:
    if isinstance(obj, typer.Typer):
        return typer.main.get_group(obj)
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(obj)
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """A group whose commands are imported when they run (or their help is shown)."""

    def list_commands(self, ctx: Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command = _as_click(getattr(importlib.import_module(entry.module), entry.attr))
        command.name = cmd_name
        return command

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.help) for name, entry in COMMANDS.items()])

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run through `run`, which owns how the command ends (click's own ending
        prints tracebacks-free but multi-line, non-JSON errors)."""
        status = run(self, args)
        if standalone_mode:
            sys.exit(status)
        return status


def _version(value: bool) -> None:
    if value:
        typer.echo(f"soma {__version__}")
        raise typer.Exit()


def build_group() -> Command:
    """The `soma` group: options of its own from a Typer callback, commands lazily."""
    soma = typer.Typer(
        name="soma",
        cls=LazyGroup,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @soma.callback()
    def options(
        version: Annotated[
            bool,
            typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
        ] = False,
    ) -> None:
        """soma: run a validator or fullnode, start a local network, use the client."""

    return typer.main.get_command(soma)


def run(group: Command, argv: Sequence[str] | None = None) -> int:
    """Run one `soma` invocation; returns its exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    use_json_for(args)
    as_json = wants_json(args)  # now: parsing consumes `args`
    # From here a Ctrl-C is a KeyboardInterrupt, so what started can stop in order
    # (asyncio.run turns it into a cancellation of the running command).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with group.make_context("soma", args) as ctx:
            group.invoke(ctx)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        print("interrupted", file=sys.stderr, flush=True)
        return 130
    except ClickException as e:
        if as_json:
            print(error_line(e.format_message(), "USAGE_ERROR"), file=sys.stderr)
        else:
            e.show()
        return e.exit_code
    return 0


app = build_group()


def main() -> NoReturn:
    """The console script: run, then exit with the command's status."""
    try:
        status = run(app)
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            status = e.code or 0
        else:
            print(e.code, file=sys.stderr)
            status = 1
    if status >= 128:
        # Stopped by a signal, and everything it started is stopped: end here. CPython
        # would otherwise kill itself with SIGINT at exit when the Ctrl-C struck inside a
        # C extension's initialisation (it remembers that KeyboardInterrupt as unhandled,
        # though `run` handled it), and the exit status would read -2 instead of 130.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
