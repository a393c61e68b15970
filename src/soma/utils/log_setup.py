"""How a node process logs: a level, and lines as text or as JSON.

Every command that runs a node (`soma node`, `soma start` for itself and the nodes it
launches) configures logging here, so one network's logs read the same everywhere:

- `text`, for people: `2024-05-01 12:00:00,123 INFO soma.node.node: entered epoch 2 ...`
- `json`, for log collectors: one object a line with `time` (ISO 8601, UTC, milliseconds),
  `level`, `logger`, `message`, `exc` when the record carries an exception, and every
  structured field the call passed with `extra=` (`peer`, `tx`, `commit`, `node`...), so
  a collector can select a peer's or a transaction's lines without parsing messages.

Lines go to whatever `sys.stderr` is at the moment of writing, not the stream there when
logging was configured: a terminal dashboard that redirects stderr above its panel (see
`soma.cli.dashboard`) then keeps log lines from tearing the panel.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Libraries that log every request (httpx at INFO, httpcore and gRPC's event loop at
#: DEBUG): they log warnings only, at any level, or they would drown the node's own
#: lines (a dashboard scrapes five nodes a second; gRPC logs each call's loop).
CHATTY_LIBRARIES = ("httpx", "httpcore", "grpc")

#: The attributes every `LogRecord` has: anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    [
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        "message",
        "asctime",
        "taskName",
    ]
)


class LogSettingError(ValueError):
    """A log level or format that does not exist (the message says which exist)."""


@dataclasses.dataclass(frozen=True)
class LogSettings:
    """A checked level name (`INFO`) and format (`text` or `json`)."""

    level: str = "INFO"
    format: str = "text"

    @classmethod
    def parse(cls, level: str, format: str) -> LogSettings:
        """Check a level and a format as a user typed them (any case)."""
        number = logging.getLevelName(level.strip().upper())
        if not isinstance(number, int):
            raise LogSettingError(f"unknown log level {level!r} (one of {', '.join(LOG_LEVELS)})")
        fmt = format.strip().lower()
        if fmt not in LOG_FORMATS:
            raise LogSettingError(f"unknown log format {format!r} (text or json)")
        return cls(logging.getLevelName(number), fmt)

    def node_args(self) -> list[str]:
        """The same settings, as the options of a `soma node` command line."""
        return ["--log-level", self.level, "--log-format", self.format]


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and key not in out:
                out[key] = value
        return json.dumps(out, default=str, ensure_ascii=False)


class StderrHandler(logging.Handler):
    """Writes each line to the `sys.stderr` of the moment (see the module's docstring)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def formatter_for(format: str) -> logging.Formatter:
    return JsonFormatter() if format == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: LogSettings) -> None:
    """This process's logging: the root logger at `settings.level`, one line a record
    on stderr; Python's warnings go through it too (a JSON log stays all JSON)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handler = StderrHandler()
    handler.setFormatter(formatter_for(settings.format))
    root.addHandler(handler)
    root.setLevel(settings.level)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
