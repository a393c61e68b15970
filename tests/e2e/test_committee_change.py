"""The committee changes while the network runs, 4 -> 5 -> 4, with a real fifth node:

`soma validator new` writes a candidate; `soma node --config` runs it (following the
chain by state sync: it is in no committee yet); `soma client validator join` and the
next epoch change make it a member, running consensus: 5 members listed, its blocks in
the commits; `soma client validator leave` and another epoch change take it out: 4
members, and the node goes on following the chain as a fullnode. The supply is the
genesis supply all along.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soma.consensus.store import ConsensusStore
from soma.node.layout import validator_config_name
from soma.types.config import load_node_config
from tests.e2e.local_network import Network, node_status

EPOCH_MS = 5_000
#: Liveness bound of each wait (never a performance assertion).
WAIT_S = 90.0


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    directory = tmp_path_factory.mktemp("committee") / "net"
    net = Network(directory, "--epoch-duration-ms", str(EPOCH_MS))
    try:
        yield net
    finally:
        net.stop()


def soma(*args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "soma", *args], capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def client(network: Network, *args: str) -> Any:
    return soma("client", "--json", "--dir", str(network.directory), *args)


def wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"not in {WAIT_S} s: {what}"
        time.sleep(0.5)


def test_a_fifth_validator_joins_runs_consensus_and_leaves(
    network: Network, tmp_path: Path
) -> None:
    genesis = client(network, "supply")["genesis"]
    out = tmp_path / "v5"
    written = soma("validator", "new", "--dir", str(network.directory), "--out", str(out), "--json")
    config = Path(written["config"])
    authority = load_node_config(config).keys.authority
    assert authority is not None
    node = subprocess.Popen(
        [sys.executable, "-m", "soma", "node", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert node.stdout is not None
        assert node.stdout.readline().startswith(b"READY")

        joined = client(network, "validator", "join", "--config", str(config))
        assert joined["status"] == "success", joined

        def committee_of(size: int) -> dict[str, Any] | None:
            committee: dict[str, Any] = client(network, "committee")
            return committee if len(committee["members"]) == size else None

        five = wait_for("5 members", lambda: committee_of(5))
        names = [m["name"] for m in five["members"]]
        assert str(authority.name) in names
        assert written["address"] in {m["account"] for m in five["members"]}
        assert client(network, "supply")["total"] == genesis

        # Its blocks are in the commits of the epochs it is a member of (validator-0's
        # consensus stores, read once validator-0 has left each epoch and closed it; it
        # may enter its first epoch late: it follows by state sync until then).
        first = five["epoch"]
        wait_for("two epochs as a member", lambda: client(network, "status")["epoch"] > first + 1)
        index = names.index(str(authority.name))
        authored = sum(_blocks_by(network, epoch, index) for epoch in (first, first + 1))
        assert authored > 0

        left = client(network, "validator", "leave", "--config", str(config))
        assert left["status"] == "success", left
        four = wait_for("4 members", lambda: committee_of(4))
        assert str(authority.name) not in [m["name"] for m in four["members"]]
        assert client(network, "supply")["total"] == genesis

        # Still running, following the chain as a fullnode: its own status moves on.
        assert node.poll() is None
        first = node_status(config)
        assert first.epoch >= four["epoch"] - 1
        wait_for(
            "the fifth node to follow the chain",
            lambda: node_status(config).latest_commit > first.latest_commit + 5,
        )
        assert node.poll() is None
    finally:
        node.terminate()
        node.wait(timeout=60)


def _blocks_by(network: Network, epoch: int, author: int) -> int:
    """Blocks of `author` in the commits of `epoch`, as validator-0 stored them."""
    config = load_node_config(network.directory / validator_config_name(0))
    path = Path(config.db_path) / f"consensus-{epoch}"
    store = wait_for(f"{path} closed", lambda: _open(path))
    try:
        return sum(
            1 for commit in store.scan_commits(1) for ref in commit.blocks if ref.author == author
        )
    finally:
        store.close()


def _open(path: Path) -> ConsensusStore | None:
    try:
        return ConsensusStore.open_rocksdb(path)
    except Exception:  # still open in validator-0 (RocksDB's lock): try again
        return None


def test_refused_validator_changes_charge_the_fee_and_change_nothing(
    network: Network, tmp_path: Path
) -> None:
    root = network.directory
    genesis = client(network, "supply")["genesis"]
    before = client(network, "committee")
    assert len(before["members"]) == 4
    out = tmp_path / "v6"
    written = soma("validator", "new", "--dir", str(root), "--out", str(out), "--json")
    config = written["config"]
    account = written["address"]

    def refused(*args: str) -> dict[str, Any]:
        """A transaction that executed and failed: exit 1, its result with the reason."""
        done = subprocess.run(
            [sys.executable, "-m", "soma", "client", "--json", "--dir", str(root), *args],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 1, (done.stdout, done.stderr)
        result: dict[str, Any] = json.loads(done.stdout)
        assert result["status"] != "success" and result["fee"] > 0, result
        return result

    balance = network.balance(account)
    small = refused("validator", "join", "--config", config, "--stake", "1")
    assert "stake" in json.dumps(small).lower()
    assert network.balance(account) == balance - small["fee"]  # the fee, nothing staked

    stranger = refused("validator", "leave", "--config", config)
    assert "not a validator" in json.dumps(stranger)

    founder = str(root / validator_config_name(0))
    too_few = refused("validator", "leave", "--config", founder)
    assert "4" in json.dumps(too_few)

    # Nothing changed at the next epoch change.
    epoch = client(network, "status")["epoch"]
    wait_for("an epoch change", lambda: client(network, "status")["epoch"] > epoch)
    after = client(network, "committee")
    assert [m["name"] for m in after["members"]] == [m["name"] for m in before["members"]]
    assert [m["stake"] for m in after["members"]] == [m["stake"] for m in before["members"]]
    assert client(network, "supply")["total"] == genesis
