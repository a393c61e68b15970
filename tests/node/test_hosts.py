"""`soma genesis --hosts`: a network across machines, each node bound to and dialled at
the address given for it; every mistake in the list is a one-line usage error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from soma.cli.main import app
from soma.node.hosts import HostsError, parse_hosts
from soma.node.local_network import create_local_network
from soma.types.config import load_client_config, load_node_config

HOSTS = {f"validator-{i}": f"10.9.0.{i + 1}:7000" for i in range(4)} | {"fullnode": "10.9.0.5:8000"}


def _inline(hosts: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in hosts.items())


def test_each_node_binds_and_is_dialled_at_its_address(tmp_path: Path) -> None:
    net = create_local_network(tmp_path / "net", hosts=parse_hosts(_inline(HOSTS), 4))
    for i, path in enumerate(net.validator_configs):
        config = load_node_config(path)
        host = f"10.9.0.{i + 1}"
        assert config.network_address == f"{host}:7000"
        assert config.consensus_address == f"{host}:7001"
        assert config.p2p_address == f"{host}:7002"
        assert config.metrics_address == f"{host}:7003"
    fullnode = load_node_config(net.fullnode_config)
    assert fullnode.api_address == "10.9.0.5:8001"
    assert fullnode.metrics_address == "10.9.0.5:8003"
    assert {p.address for p in fullnode.seed_peers} == {f"10.9.0.{i}:7002" for i in range(1, 5)}
    assert load_client_config(net.client_config).api_url == "http://10.9.0.5:8001"
    # Addresses given by hand are not soma's to move: no ports.yaml.
    assert not (tmp_path / "net" / "ports.yaml").exists()


def test_a_yaml_file_of_hosts_works_as_well(tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts.yaml"
    hosts_file.write_text(yaml.safe_dump(HOSTS))
    result = CliRunner().invoke(
        app, ["genesis", "--dir", str(tmp_path / "net"), "--hosts", str(hosts_file), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert '"api_url": "http://10.9.0.5:8001"' in result.output


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ({k: v for k, v in HOSTS.items() if k != "fullnode"}, "no address for fullnode"),
        (HOSTS | {"validator-9": "10.9.0.9:7000"}, "unknown node 'validator-9'"),
        (HOSTS | {"fullnode": "10.9.0.1:7002"}, "both need 10.9.0.1:7002"),
        (HOSTS | {"fullnode": "10.9.0.5"}, "expected host:port"),
        (HOSTS | {"fullnode": "10.9.0.5:65535"}, "port 65535 must be 1 to 65532"),
        (HOSTS | {"fullnode": "0.0.0.0:7000"}, "not an address other nodes can dial"),
        (HOSTS | {"fullnode": "bad host!:7000"}, "is not a host name or IP"),
    ],
)
def test_mistakes_are_usage_errors(tmp_path: Path, hosts: dict[str, str], message: str) -> None:
    with pytest.raises(HostsError, match=message):
        parse_hosts(_inline(hosts), 4)
    result = CliRunner().invoke(
        app, ["genesis", "--dir", str(tmp_path / "net"), "--hosts", _inline(hosts)]
    )
    assert result.exit_code == 2
    assert message.split("'")[0] in result.output
    assert not (tmp_path / "net").exists()
