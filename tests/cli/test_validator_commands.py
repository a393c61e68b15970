"""`soma validator new` and `soma client validator join|leave|stake|unstake`, run
through the CLI against the SDK's fake network (the real flows, the real executor):
the candidate's files and keystore entry, its funding, the transactions each command
builds and signs with the candidate's account, how results and failures print, and
bad arguments (exit 2, nothing written or sent)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from soma.cli.main import app
from soma.node.candidate import ACCOUNT_KEY, CONFIG_NAME
from soma.node.local_network import create_local_network
from soma.sdk.client import Client
from soma.types.config import NodeRole, load_keystore, load_node_config
from soma.types.crypto import AccountKeyPair, read_key_file
from soma.types.transaction import AddStake, AddValidator, RemoveValidator, WithdrawStake
from tests.sdk.fake_network import URL, FakeNetwork

FEE = 10
#: Three faucet grants (1,000,000 each in the fake network) cover it and ten fees.
MIN_STAKE = 2_500_000


@pytest.fixture
def net(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    """The fake network behind every `Client` the CLI opens."""
    fake = FakeNetwork(fee=FEE, min_stake=MIN_STAKE)
    connect = Client._connect

    def through_fake(self: Client, transport: httpx.BaseTransport | None) -> None:
        connect(self, fake.transport())

    monkeypatch.setattr(Client, "_connect", through_fake)
    return fake


@pytest.fixture
def network(tmp_path: Path, net: FakeNetwork) -> Iterator[Path]:
    """A network directory whose client talks to the fake network."""
    root = tmp_path / "net"
    create_local_network(root, validators=2, accounts=1)
    client = yaml.safe_load((root / "client.yaml").read_text())
    client["api_url"] = URL
    (root / "client.yaml").write_text(yaml.safe_dump(client))
    yield root


def soma(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def new_candidate(network: Path, out: Path) -> dict[str, Any]:
    result = soma("validator", "new", "--dir", str(network), "--out", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def client(network: Path, *args: str) -> Result:
    return soma("client", "--json", "--dir", str(network), "validator", *args)


# --- soma validator new ----------------------------------------------------------------


def test_validator_new_writes_a_funded_candidate(
    network: Path, net: FakeNetwork, tmp_path: Path
) -> None:
    keystore_before = load_keystore(network / "keystore.yaml")
    out = tmp_path / "candidate"
    found = new_candidate(network, out)
    assert set(found) == {"config", "address"}
    config = load_node_config(found["config"])
    assert Path(found["config"]) == (out / CONFIG_NAME).resolve()
    assert config.role is NodeRole.VALIDATOR and config.keys.authority is not None
    assert (out / "genesis.blob").read_bytes() == (network / "genesis.blob").read_bytes()
    fullnode = yaml.safe_load((network / "fullnode.yaml").read_text())
    raw = yaml.safe_load(Path(found["config"]).read_text())
    assert raw["seed_peers"] == fullnode["seed_peers"]
    addresses = [config.network_address, config.consensus_address, config.p2p_address]
    assert len(set(addresses)) == 3
    assert all(a is not None and a.startswith("127.0.0.1:") for a in addresses)
    for name in ("authority.key", "protocol.key", "network.key", ACCOUNT_KEY):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    account = read_key_file(out / ACCOUNT_KEY, AccountKeyPair)
    assert account.public_key.to_address().to_hex() == found["address"]
    # The client can sign for it: it is in the keystore, in the keystore's format.
    keystore = load_keystore(network / "keystore.yaml")
    assert keystore == [*keystore_before, account]
    assert yaml.safe_load((network / "keystore.yaml").read_text())[-1] == account.to_base64()
    # Funded with the minimum stake and ten fees: three grants of the fake faucet.
    assert net.balance(account.public_key.to_address()) == 3_000_000
    assert sum(1 for m, p, _ in net.requests if m == "POST" and p.endswith("/faucet")) == 3


def test_validator_new_refuses_a_non_empty_out(network: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    keystore = (network / "keystore.yaml").read_bytes()
    result = soma("validator", "new", "--dir", str(network), "--out", str(out), "--json")
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert error["code"] == "INVALID_ARGUMENT" and "not empty" in error["message"]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (network / "keystore.yaml").read_bytes() == keystore


def test_validator_new_without_a_network_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "candidate"
    result = soma("validator", "new", "--dir", str(tmp_path / "none"), "--out", str(out))
    assert result.exit_code == 1 and "no network found" in result.stderr
    assert result.stderr.count("\n") == 1 and not out.exists()


# --- soma client validator ---------------------------------------------------------------


def test_join_stakes_the_minimum_and_prints_the_result(
    network: Path, net: FakeNetwork, tmp_path: Path
) -> None:
    found = new_candidate(network, tmp_path / "cand-1")
    result = client(network, "join", "--config", found["config"])
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["status"] == "success" and out["fee"] == FEE and out["digest"] and out["effects"]
    tx = net.sent[-1]
    assert isinstance(tx.data.kind, AddValidator) and tx.data.kind.stake == MIN_STAKE
    assert str(tx.data.sender) == found["address"]  # signed by the candidate's account
    metadata = tx.data.kind.metadata
    config = load_node_config(found["config"])
    assert metadata.hostname == "cand-1"
    assert metadata.authority_key == config.keys.authority.public_key  # type: ignore[union-attr]
    assert metadata.network_key == config.keys.network.public_key
    assert (metadata.network_address, metadata.p2p_address) == (
        config.network_address,
        config.p2p_address,
    )
    # A second candidate of the same directory name must name itself otherwise.
    other = new_candidate(network, tmp_path / "elsewhere" / "cand-1")
    taken = client(network, "join", "--config", other["config"])
    assert taken.exit_code == 1 and json.loads(taken.stderr)["code"] == "HOSTNAME_TAKEN"
    renamed = client(network, "join", "--config", other["config"], "--hostname", "cand-2")
    assert renamed.exit_code == 0, renamed.stderr


def test_a_join_that_fails_prints_the_reason_and_exits_1(
    network: Path, net: FakeNetwork, tmp_path: Path
) -> None:
    found = new_candidate(network, tmp_path / "cand")
    result = client(network, "join", "--config", found["config"], "--stake", "5")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["status"] == "failure" and out["error"]["code"] == "INSUFFICIENT_STAKE"
    join = ["client", "--dir", str(network), "validator", "join", "--config", found["config"]]
    text = soma(*join, "--stake", "5")
    assert text.exit_code == 1 and text.stdout == ""
    assert text.stderr.startswith("error: transaction ") and "[INSUFFICIENT_STAKE]" in text.stderr
    # The failed join registered nothing: a join with the minimum stake goes through.
    again = soma(*join)
    assert again.exit_code == 0 and again.stdout.startswith("success: ")
    assert net.system_state().validators.pending_active[0].metadata.hostname == "cand"


def test_stake_unstake_and_leave_sign_with_the_validators_account(
    network: Path, net: FakeNetwork, tmp_path: Path
) -> None:
    found = new_candidate(network, tmp_path / "cand")
    account = read_key_file(tmp_path / "cand" / ACCOUNT_KEY, AccountKeyPair)
    address = account.public_key.to_address()
    for _ in range(4):  # validators that stay when it leaves
        net.make_validator(AccountKeyPair.generate().public_key.to_address(), 1)
    net.make_validator(address, MIN_STAKE)
    config = found["config"]
    for args, kind in (
        (["stake", "--amount", "1000"], AddStake),
        (["unstake", "--amount", "400"], WithdrawStake),
        (["leave"], RemoveValidator),
    ):
        result = client(network, *args, "--config", config)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["status"] == "success"
        assert isinstance(net.sent[-1].data.kind, kind) and net.sent[-1].data.sender == address
    assert net.system_state().validators.find(address).next_epoch_stake == MIN_STAKE + 600  # type: ignore[union-attr]
    assert net.system_state().validators.pending_removals == (address,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["join", "--stake", "0"], "--stake must be a positive amount"),
        (["stake", "--amount", "0"], "--amount must be a positive amount"),
        (["unstake", "--amount", "-3"], "--amount must be a positive amount"),
        (["stake", "--amount", str(2**64)], "--amount must be a positive amount"),
        (["stake", "--amount", "ten"], "not a valid int"),
        (["leave"], "no validator config at"),
    ],
)
def test_bad_arguments_exit_2_and_send_nothing(
    network: Path, net: FakeNetwork, tmp_path: Path, args: list[str], message: str
) -> None:
    missing = str(tmp_path / "nowhere" / "validator.yaml")
    result = client(network, *args, "--config", missing)
    assert result.exit_code == 2 and message in json.loads(result.stderr)["message"]
    assert net.posts() == 0


def test_a_config_without_its_account_or_of_a_fullnode_is_refused(
    network: Path, net: FakeNetwork, tmp_path: Path
) -> None:
    found = new_candidate(network, tmp_path / "cand")
    (tmp_path / "cand" / ACCOUNT_KEY).unlink()
    result = client(network, "leave", "--config", found["config"])
    assert result.exit_code == 2
    assert "no validator account next to" in json.loads(result.stderr)["message"]
    fullnode = client(network, "leave", "--config", str(network / "fullnode.yaml"))
    assert fullnode.exit_code == 2 and "not a validator's config" in fullnode.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("role: [")
    bad = client(network, "leave", "--config", str(broken))
    assert bad.exit_code == 2 and "not valid YAML" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_supply_and_status(network: Path, net: FakeNetwork, tmp_path: Path) -> None:
    new_candidate(network, tmp_path / "cand")
    found = json.loads(soma("client", "--json", "--dir", str(network), "supply").stdout)
    assert set(found) == {"total", "genesis", "coins", "stake", "pending_fees"}
    assert found["coins"] == 3_000_000 and found["total"] == found["genesis"]
    text = soma("client", "--dir", str(network), "supply")
    assert text.exit_code == 0 and text.stdout.startswith(f"total {found['total']} (genesis")
    status = json.loads(soma("client", "--json", "--dir", str(network), "status").stdout)
    assert status["epoch"] == 0 and status["min_validator_stake"] == MIN_STAKE
