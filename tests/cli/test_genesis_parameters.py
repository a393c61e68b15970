"""`--epoch-duration-ms` and `--min-validator-stake` of `soma genesis` and `soma start`:
written into the genesis parameters, refused (exit 2, nothing written) unless a
positive u64, and held against an existing network's genesis by `soma start`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from soma.cli.main import app
from soma.node.dir_lock import NetworkLock
from soma.node.local_network import GenesisArgumentError, genesis_system_state, read_genesis
from soma.node.start import GenesisChoices, prepare_network
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.system_state import SystemParameters


def parameters(root: Path) -> SystemParameters:
    return genesis_system_state(read_genesis(root / "genesis.blob")).parameters


def test_genesis_writes_the_epoch_duration_and_minimum_stake(tmp_path: Path) -> None:
    root = tmp_path / "net"
    result = CliRunner().invoke(
        app,
        [
            *("genesis", "--dir", str(root), "--validators", "1", "--accounts", "1"),
            *("--epoch-duration-ms", "5000", "--min-validator-stake", "77", "--json"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    found = parameters(root)
    assert (found.epoch_duration_ms, found.min_validator_stake) == (5000, 77)
    assert found.transaction_fee == DEFAULT_PARAMETERS.transaction_fee


def test_genesis_defaults(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["genesis", "--dir", str(tmp_path), "--validators", "1"])
    assert result.exit_code == 0, result.stderr
    assert parameters(tmp_path) == DEFAULT_PARAMETERS


@pytest.mark.parametrize("command", ["genesis", "start"])
@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--epoch-duration-ms", "0", "--epoch-duration-ms must be a positive integer"),
        ("--epoch-duration-ms", "-5", "--epoch-duration-ms must be a positive integer"),
        ("--epoch-duration-ms", str(2**64), "--epoch-duration-ms must be a positive integer"),
        ("--epoch-duration-ms", "1h", "is not a valid int"),
        ("--min-validator-stake", "0", "--min-validator-stake must be a positive integer"),
    ],
)
def test_bad_values_exit_2_and_write_nothing(
    tmp_path: Path, command: str, flag: str, value: str, message: str
) -> None:
    root = tmp_path / "net"
    result = CliRunner().invoke(app, [command, "--dir", str(root), flag, value])
    assert result.exit_code == 2 and message in result.stderr
    assert not root.exists()
    if command == "genesis":
        as_json = CliRunner().invoke(app, [command, "--dir", str(root), flag, value, "--json"])
        assert message in json.loads(as_json.stderr)["message"]


def test_start_puts_its_choices_in_a_new_network_and_holds_an_old_one_to_them(
    tmp_path: Path,
) -> None:
    choices = GenesisChoices(epoch_duration_ms=9_000, min_validator_stake=5)
    with NetworkLock(tmp_path):
        assert prepare_network(tmp_path, 1, False, choices) == 1
        found = parameters(tmp_path)
        assert (found.epoch_duration_ms, found.min_validator_stake) == (9_000, 5)
        # Again with the same choices, or none: the network is kept.
        assert prepare_network(tmp_path, None, False, choices) == 1
        assert prepare_network(tmp_path, None, False) == 1
        with pytest.raises(GenesisArgumentError) as e:
            prepare_network(tmp_path, None, False, GenesisChoices(epoch_duration_ms=1_000))
        assert "--epoch-duration-ms 9000, not 1000" in e.value.message
        assert "--force-regenesis" in e.value.message
        with pytest.raises(GenesisArgumentError, match="--min-validator-stake 5, not 6"):
            prepare_network(tmp_path, None, False, GenesisChoices(min_validator_stake=6))
    assert parameters(tmp_path) == found
