"""`soma dag`: tools for DAGs written in the DAG text format."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from soma.consensus.dag_decide import decide_dag_text
from soma.types.error import SomaError

dag_app = typer.Typer(help="Inspect DAGs written in the DAG text format.", no_args_is_help=True)


class Schedule(enum.StrEnum):
    STAKE = "stake"
    ROUND_ROBIN = "round-robin"


@dag_app.command("decide")
def decide(
    file: Annotated[Path, typer.Argument(help="A DAG in the text format.")],
    wave_length: Annotated[int, typer.Option("--wave-length", min=3)] = 3,
    no_pipeline: Annotated[
        bool, typer.Option("--no-pipeline", help="A leader per wave, not per round.")
    ] = False,
    leaders_per_round: Annotated[int, typer.Option("--leaders-per-round", min=1)] = 1,
    schedule: Annotated[
        Schedule,
        typer.Option(
            "--schedule",
            help="stake: stake-weighted, round-seeded election; round-robin: leader k of "
            "round r is authority (r + k) mod N.",
        ),
    ] = Schedule.STAKE,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Decide every leader slot of the DAG and print why each was committed or skipped."""
    try:
        text = file.read_text()
    except OSError as e:
        typer.echo(f"error: cannot read {file}: {e.strerror}", err=True)
        raise typer.Exit(code=2) from None
    except UnicodeDecodeError as e:
        typer.echo(f"error: {file} is not UTF-8 text (byte {e.start})", err=True)
        raise typer.Exit(code=2) from None
    try:
        statuses = decide_dag_text(
            text,
            wave_length=wave_length,
            pipeline=not no_pipeline,
            leaders_per_round=leaders_per_round,
            round_robin=schedule is Schedule.ROUND_ROBIN,
        )
    except (SomaError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    rows = [s.describe() for s in statuses]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        author = int(str(row["authority"]))
        name = chr(ord("A") + author) if author < 26 else f"[{author}]"
        how = f" ({row['decided']})" if row["decided"] else ""
        typer.echo(f"round {row['round']:>4}  {name:>4}  {row['status']}{how}")
