"""Options several commands share, declared once (a light module: commands that do not
talk to a network import it without the client's dependencies)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DirOption = Annotated[
    Path | None, typer.Option("--dir", help="Network directory (else SOMA_DIR, else the default).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
