"""Node logging: JSON lines that parse, with extras and exceptions; the text format of
old; bad `--log-level`/`--log-format` values refused with status 2 and one line."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from soma.cli.main import app
from soma.utils.log_setup import (
    CHATTY_LIBRARIES,
    JsonFormatter,
    LogSettingError,
    LogSettings,
    StderrHandler,
    configure_logging,
)


def record(message: str, *args: object, **kwargs: object) -> logging.LogRecord:
    logger = logging.getLogger("soma.test")
    return logger.makeRecord(
        "soma.test", logging.WARNING, __file__, 1, message, args, None, **kwargs
    )


def test_a_json_line_has_time_level_logger_message_and_the_extras() -> None:
    line = JsonFormatter().format(
        record("dropped %s", "tx1", extra={"tx": "tx1", "peer": "validator-2", "commit": 7})
    )
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "WARNING" and out["logger"] == "soma.test"
    assert out["message"] == "dropped tx1"
    assert (out["tx"], out["peer"], out["commit"]) == ("tx1", "validator-2", 7)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", out["time"])
    assert "exc" not in out


def test_a_json_line_carries_the_exception_and_odd_values_as_text() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        rec = logging.getLogger("soma.test").makeRecord(
            "soma.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info(),
            extra={"digests": {b"\x00"}},
        )  # fmt: skip
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    out = json.loads(line)
    assert "ValueError: boom" in out["exc"] and "Traceback" in out["exc"]
    assert isinstance(out["digests"], str)


def test_settings_accept_any_case_and_refuse_what_does_not_exist() -> None:
    assert LogSettings.parse("info", "JSON") == LogSettings("INFO", "json")
    assert LogSettings.parse("warn", "text").level == "WARNING"
    assert LogSettings("DEBUG", "json").node_args() == [
        "--log-level",
        "DEBUG",
        "--log-format",
        "json",
    ]
    for level, fmt in (("loud", "text"), ("10", "text"), ("INFO", "xml")):
        with pytest.raises(LogSettingError):
            LogSettings.parse(level, fmt)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    chatty = {name: logging.getLogger(name).level for name in CHATTY_LIBRARIES}
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in chatty.items():
            logging.getLogger(name).setLevel(old)
        logging.captureWarnings(False)


def test_configured_logging_writes_json_to_the_stderr_of_the_moment(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging(LogSettings("DEBUG", "json"))
    handlers = logging.getLogger().handlers
    assert len(handlers) == 1 and isinstance(handlers[0], StderrHandler)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)  # after configuring: still reached
    logging.getLogger("logtest.x").info("entered epoch %d", 2, extra={"commit": 5})
    logging.getLogger("logtest.x").debug("at DEBUG too")
    logging.getLogger("httpx").info("HTTP Request: GET ...")  # a request a line: quiet
    logging.getLogger("grpc._cython.cygrpc").debug("Loaded running loop")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["entered epoch 2", "at DEBUG too"]
    assert json.loads(lines[0])["commit"] == 5


def test_text_lines_keep_the_format_of_old(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging(LogSettings("WARNING", "text"))
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logging.getLogger("logtest.x").warning("peer %s dropped", "validator-1")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING logtest.x: peer validator-1 dropped\n",
        stream.getvalue(),
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["node", "--config", "x.yaml", "--log-format", "xml"], "unknown log format 'xml'"),
        (["node", "--config", "x.yaml", "--log-level", "loud"], "unknown log level 'loud'"),
        (["start", "--dir", "D", "--log-format", "yaml"], "unknown log format 'yaml'"),
        (["start", "--dir", "D", "--log-level", "chatty"], "unknown log level 'chatty'"),
    ],
)
def test_bad_log_flags_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr


def test_the_http_servers_lines_are_in_the_nodes_format(
    restored_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn's own log config would give its loggers a plain-text handler of their own:
    a request that fails would then put a traceback into an all-JSON log."""
    from fastapi import FastAPI

    from soma.rpc.server import uvicorn_config

    # As a fresh node process has them (a test that ran uvicorn with its own log config
    # in this process may have left handlers there).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [])
        monkeypatch.setattr(logger, "propagate", True)
    configure_logging(LogSettings("INFO", "json"))
    uvicorn_config(FastAPI(), "127.0.0.1", 0)  # configures uvicorn's logging
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["logger"] == "uvicorn.error" and "RuntimeError: boom" in record["exc"]
