"""How `soma client` reports a transaction that executed with a failure status: a
non-zero exit, one line of text (never a Python dict), or with --json one object with
`status` and `error: {code, message}`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from soma.cli.main import app
from soma.node.local_network import create_local_network
from soma.sdk.client import Client

RECIPIENT = "0x" + "ab" * 32
OBJECT = "0x" + "cd" * 32


def _failed(*_: Any, **__: Any) -> dict[str, Any]:
    return {
        "digest": "9kJccDwEXP3JzT3PvpTVKA97ZtxxWrDW8EixGiSTW3Ae",
        "status": "failure",
        "fee": 1000,
        "effects": {
            "status": "failure",
            "error": {"type": "InputObjectConsumed", "object_id": OBJECT, "version": 5},
        },
        "certificate": "",
    }


@pytest.fixture
def network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    create_local_network(tmp_path, validators=1, accounts=1)
    monkeypatch.setattr(Client, "transfer", _failed)
    return tmp_path


def test_an_executed_failure_is_one_line_and_exit_1(network: Path) -> None:
    result = CliRunner().invoke(
        app, ["client", "--dir", str(network), "transfer", "--to", RECIPIENT, "--amount", "5"]
    )
    assert result.exit_code == 1 and result.stdout == ""
    line = result.stderr
    assert line.count("\n") == 1 and "{" not in line
    assert line.startswith("error: transaction 9kJcc") and "INPUT_OBJECT_CONSUMED" in line
    assert OBJECT in line and "fee 1000" in line


def test_an_executed_failure_in_json_has_status_and_error(network: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["client", "--json", "--dir", str(network), "transfer", "--to", RECIPIENT, "--amount", "5"],
    )
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["status"] == "failure" and out["fee"] == 1000
    assert out["error"]["code"] == "INPUT_OBJECT_CONSUMED" and out["error"]["message"]
