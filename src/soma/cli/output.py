"""How a `soma` command ends: one line for a person, or one JSON object for a program.

Every error a user can cause ends a command with a single line on stderr and a
non-zero exit status, never a traceback: `error: <message>`, or with `--json` the
object `{"code": ..., "message": ...}`. Status 2 is a bad invocation (an unknown
option, a malformed argument), 1 anything else that failed, 130 a Ctrl-C.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import NoReturn

JSON_FLAG = "--json"

#: Whether this invocation asked for JSON (`--json` anywhere on its command line),
#: decided before the arguments are parsed (`use_json_for`), so that usage errors and
#: errors raised before a command reads its own options follow it too.
_json_mode = False


def wants_json(args: Sequence[str]) -> bool:
    """Whether a command line asks for JSON (options after `--` do not count)."""
    args = list(args)
    return JSON_FLAG in (args[: args.index("--")] if "--" in args else args)


def use_json_for(args: Sequence[str]) -> None:
    global _json_mode
    _json_mode = wants_json(args)


def error_line(message: str, code: str = "ERROR", as_json: bool | None = None) -> str:
    """The single line that reports an error."""
    flat = " ".join(message.split())
    if _json_mode if as_json is None else as_json:
        return json.dumps({"code": code, "message": flat})
    return f"error: {flat}"


def fail(message: str, code: int = 1, error_code: str = "ERROR") -> NoReturn:
    """Print the error line to stderr and exit with `code`."""
    print(error_line(message, error_code), file=sys.stderr, flush=True)
    raise SystemExit(code)
