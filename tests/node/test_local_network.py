"""`soma genesis` and the config files: what is written loads back, genesis executes to
the funded balances, and every bad field is named in a typed error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from soma.authority.state import initialize_genesis, read_system_state
from soma.authority.store import AuthorityStore
from soma.cli.main import app
from soma.node.local_network import (
    GenesisArgumentError,
    create_local_network,
    read_genesis,
)
from soma.types.config import (
    ConfigError,
    NodeRole,
    load_client_config,
    load_keystore,
    load_node_config,
)


def test_written_network_loads_and_genesis_funds_the_accounts(tmp_path: Path) -> None:
    net = create_local_network(tmp_path / "net", validators=4, accounts=3, balance=777)
    configs = [load_node_config(p) for p in net.validator_configs]
    assert all(c.role is NodeRole.VALIDATOR for c in configs)
    fullnode = load_node_config(net.fullnode_config)
    assert fullnode.role is NodeRole.FULLNODE and fullnode.api_address is not None
    client = load_client_config(net.client_config)
    assert client.api_url == net.api_url
    keystore = load_keystore(client.keystore_path)
    assert [k.public_key for k in keystore] == [a.public_key for a in net.accounts]
    assert client.active_address == keystore[0].public_key.to_address()

    store = AuthorityStore.open_memory()
    try:
        initialize_genesis(store, read_genesis(configs[0].genesis_path))
        committee = read_system_state(store).committee()
        # Each validator's keys and addresses are the committee's.
        for config in configs:
            assert config.keys.authority is not None
            member = committee.members[committee.index_of(config.keys.authority.name)]
            assert member.protocol_key == config.keys.protocol.public_key
            assert member.network_key == config.keys.network.public_key
            assert member.consensus_address == config.consensus_address
            assert member.network_address == config.network_address
            assert member.p2p_address == config.p2p_address and not config.seed_peers
        # The fullnode is seeded with every validator's P2P address and peer id.
        assert {(s.address, s.peer_id) for s in fullnode.seed_peers} == {
            (m.p2p_address, m.network_key) for m in committee.members
        }
        for key in keystore:
            refs = list(store.owned_refs(key.public_key.to_address()))
            assert len(refs) == 1
            obj = store.get_live_object(refs[0][0])
            assert obj is not None and obj.coin_balance() == 777
    finally:
        store.close()
    ports = [
        address
        for c in [*configs, fullnode]
        for address in (c.network_address, c.consensus_address, c.p2p_address, c.api_address)
        if address is not None
    ]
    assert len(set(ports)) == len(ports) == 3 * 4 + 3


def test_two_networks_get_different_ports(tmp_path: Path) -> None:
    a = create_local_network(tmp_path / "a", validators=2, accounts=1)
    b = create_local_network(tmp_path / "b", validators=2, accounts=1)
    assert a.api_url != b.api_url
    assert (
        load_node_config(a.validator_configs[0]).consensus_address
        != load_node_config(b.validator_configs[0]).consensus_address
    )


def test_an_existing_network_is_not_overwritten(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=1, accounts=1)
    with pytest.raises(GenesisArgumentError, match="already holds"):
        create_local_network(tmp_path, validators=1, accounts=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"validators": 0}, "validators"),
        ({"accounts": -1}, "accounts"),
        ({"balance": 0}, "balance"),
        ({"balance": 2**64}, "balance"),
        ({"epoch_duration_ms": 0}, "epoch duration"),
    ],
)
def test_bad_genesis_arguments(tmp_path: Path, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(GenesisArgumentError, match=message):
        create_local_network(tmp_path, **kwargs)


def _edit(path: Path, change: dict[str, object], drop: str | None = None) -> None:
    data = yaml.safe_load(path.read_text())
    if drop is not None:
        head, _, tail = drop.partition(".")
        if tail:
            del data[head][tail]
        else:
            del data[head]
    for key, value in change.items():
        head, _, tail = key.partition(".")
        if tail:
            data[head][tail] = value
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("change", "drop", "field"),
    [
        ({}, "network_address", "network_address"),
        ({"network_address": "nohost"}, None, "network_address"),
        ({"consensus_address": "127.0.0.1:99999"}, None, "consensus_address"),
        ({"role": "miner"}, None, "role"),
        ({"db_path": 5}, None, "db_path"),
        ({"keys.protocol": "missing.key"}, None, "keys.protocol"),
        ({}, "keys.authority", "keys.authority"),
        ({"colour": "blue"}, None, "colour"),
        ({"genesis": "nowhere.blob"}, None, "genesis"),
        ({"consensus": [1, 2]}, None, "consensus"),
        ({"p2p_address": "127.0.0.1"}, None, "p2p_address"),
        ({"seed_peers": "127.0.0.1:1"}, None, "seed_peers"),
        ({"seed_peers": ["127.0.0.1:1", "nohost"]}, None, "seed_peers[1]"),
        ({"seed_peers": [{"peer_id": "00" * 32}]}, None, "seed_peers[0].address"),
        ({"seed_peers": [{"address": "h:1", "peer_id": "zz"}]}, None, "seed_peers[0].peer_id"),
        ({"seed_peers": [{"address": "h:1", "peer_id": "ab"}]}, None, "seed_peers[0].peer_id"),
        ({"seed_peers": [{"address": "h:1", "colour": "blue"}]}, None, "seed_peers[0].colour"),
    ],
)
def test_bad_validator_config_names_the_field(
    tmp_path: Path, change: dict[str, object], drop: str | None, field: str
) -> None:
    net = create_local_network(tmp_path, validators=1, accounts=1)
    path = net.validator_configs[0]
    _edit(path, change, drop)
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert info.value.field == field
    assert info.value.code == "CONFIG_INVALID"
    assert field in info.value.message and str(path) in info.value.message


def test_seed_peers_by_address_or_with_the_expected_peer_id(tmp_path: Path) -> None:
    net = create_local_network(tmp_path, validators=1, accounts=1)
    peer_id = "ab" * 32
    _edit(
        net.fullnode_config,
        {"seed_peers": ["127.0.0.1:7000", {"address": "seed.example:7001", "peer_id": peer_id}]},
    )
    seeds = load_node_config(net.fullnode_config).seed_peers
    assert [(s.address, s.peer_id) for s in seeds] == [
        ("127.0.0.1:7000", None),
        ("seed.example:7001", bytes.fromhex(peer_id)),
    ]
    # A validator without p2p_address (a directory from before P2P) listens where the
    # committee says; a fullnode may run without P2P and without seeds.
    _edit(net.validator_configs[0], {}, drop="p2p_address")
    assert load_node_config(net.validator_configs[0]).p2p_address is None
    _edit(net.fullnode_config, {}, drop="p2p_address")
    _edit(net.fullnode_config, {}, drop="seed_peers")
    config = load_node_config(net.fullnode_config)
    assert config.p2p_address is None and config.seed_peers == ()


def test_unreadable_and_non_yaml_configs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_node_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("role: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_node_config(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_node_config(bad)


def test_bad_client_config_and_keystore(tmp_path: Path) -> None:
    net = create_local_network(tmp_path, validators=1, accounts=1)
    _edit(net.client_config, {"api_url": "ftp://x"})
    with pytest.raises(ConfigError) as info:
        load_client_config(net.client_config)
    assert info.value.field == "api_url"
    _edit(net.client_config, {"api_url": "http://127.0.0.1:1", "active_address": "0xzz"})
    with pytest.raises(ConfigError) as info:
        load_client_config(net.client_config)
    assert info.value.field == "active_address"
    keystore = tmp_path / "keystore.yaml"
    keystore.write_text("- notbase64!!\n")
    with pytest.raises(ConfigError) as info:
        load_keystore(keystore)
    assert info.value.field == "[0]"
    assert keystore.stat().st_mode & 0o077 == 0


def test_genesis_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["genesis", "--dir", str(tmp_path / "n"), "--validators", "2", "--accounts", "2", "--json"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["addresses"]) == 2 and len(out["validators"]) == 2
    again = runner.invoke(app, ["genesis", "--dir", str(tmp_path / "n")])
    assert again.exit_code == 2 and "error:" in again.stderr
    bad = runner.invoke(app, ["genesis", "--dir", str(tmp_path / "m"), "--validators", "0"])
    assert bad.exit_code == 2 and "validators" in bad.stderr


@pytest.mark.parametrize("role", ["authority", "protocol", "network"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_node_refuses_a_key_file_open_to_other_users(
    tmp_path: Path, role: str, mode: int
) -> None:
    net = create_local_network(tmp_path, validators=1, accounts=1)
    path = net.validator_configs[0]
    keys = yaml.safe_load(path.read_text())["keys"]
    key_file = (path.parent / keys[role]).resolve()
    assert key_file.stat().st_mode & 0o777 == 0o600  # as written
    key_file.chmod(mode)
    with pytest.raises(ConfigError) as info:
        load_node_config(path)
    assert info.value.field == f"keys.{role}"
    assert str(key_file) in info.value.message and f"chmod 600 {key_file}" in info.value.message
    # The same through the command that runs a node: one line, non-zero, nothing started.
    result = CliRunner().invoke(app, ["node", "--config", str(path)])
    assert result.exit_code != 0
    assert str(key_file) in result.output
    key_file.chmod(0o600)
    load_node_config(path)
