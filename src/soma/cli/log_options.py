"""`--log-level` and `--log-format`, declared once for every command that runs a node
(`soma node`, `soma start`, the benchmarks that start a local network), and their
check: a value that does not exist ends the command with one line and status 2,
before anything starts. A light module."""

from __future__ import annotations

from typing import Annotated

import typer

from soma.cli.output import fail
from soma.utils.log_setup import LogSettingError, LogSettings

LogLevelOption = Annotated[
    str,
    typer.Option("--log-level", help="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL."),
]
LogFormatOption = Annotated[
    str,
    typer.Option("--log-format", help="Log lines as text, or json (one JSON object a line)."),
]


def checked_log_settings(level: str, format: str) -> LogSettings:
    """The settings, or exit 2 with one line naming the bad value."""
    try:
        return LogSettings.parse(level, format)
    except LogSettingError as e:
        fail(str(e), code=2, error_code="USAGE_ERROR")
