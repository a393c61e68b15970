"""`soma config`: configs for nodes of an existing network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from soma.cli.options import DirOption, JsonOption
from soma.cli.output import fail

config_app = typer.Typer(help="Configs for nodes of an existing network.", no_args_is_help=True)


@config_app.command("fullnode")
def fullnode(
    out: Annotated[Path, typer.Option("--out", help="New directory for the fullnode's files.")],
    directory: DirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the config of one more fullnode of the network (fresh keys, free ports, the
    network's validators as seed peers); run it with `soma node --config <config>`."""
    from soma.node.extra_fullnode import write_extra_fullnode
    from soma.node.layout import resolve_directory
    from soma.types.error import SomaError

    try:
        written = write_extra_fullnode(resolve_directory(directory), out.expanduser())
    except SomaError as e:
        fail(e.message, code=2, error_code=e.code)
    except OSError as e:
        fail(f"cannot write {out}: {e.strerror or e}", code=1, error_code="IO_ERROR")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "config": str(written.config),
                    "api_url": written.api_url,
                    "metrics_url": written.metrics_url,
                }
            )
        )
    else:
        typer.echo(f"config {written.config}")
        typer.echo(f"API {written.api_url}")
        typer.echo(f"metrics {written.metrics_url}")
