"""Fullnodes end to end: `soma start` serves the API from its fullnode (reads see the
writes at once); one more fullnode (`soma config fullnode`) with a single seed peer
finds every node, syncs the network's history to the same state root, and, killed in
the middle of its sync, resumes where it stopped."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from soma.bench.transfers_bench import drive_transfers
from soma.node.layout import validator_config_name
from soma.node.local_network import validator_routes
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import load_keystore, load_node_config
from soma.types.crypto import NetworkKeyPair, read_key_file
from tests.e2e.local_network import Network, processes_of

#: Liveness bounds (the acceptance's own figures where it names them).
DISCOVERY_S = 30.0
SYNC_S = 120.0


def soma(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soma", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    directory = tmp_path_factory.mktemp("fullnode") / "net"
    written = soma("genesis", "--dir", str(directory), "--accounts", "200")
    assert written.returncode == 0, written.stderr
    net = Network(directory)
    try:
        asyncio.run(_load(directory, 3_000))
        yield net
    finally:
        net.stop()


async def _load(directory: Path, transfers: int) -> None:
    """Transfers through the validators, to give the chain a history."""
    configs = [load_node_config(directory / validator_config_name(i)) for i in range(4)]
    reader = await RemoteReader.connect(*validator_routes(configs))
    try:
        keys = load_keystore(directory / "keystore.yaml")
        await drive_transfers(reader, keys, lambda done: done >= transfers, None)
    finally:
        await reader.close()


def client(network: Network, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "soma", "client", "--json", "--dir", str(network.directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_api_is_the_fullnodes_and_reads_see_the_writes(network: Network) -> None:
    status = client(network, "status")
    for field in ("epoch", "latest_commit", "latest_certified_commit", "state_root", "sync_lag"):
        assert field in status
    peers = httpx.get(f"{network.api}/peers").json()
    assert sum(1 for p in peers if p["validator"]) == 4  # a fullnode's API, with P2P peers
    recipient = client(network, "new-address")["address"]
    for i in range(1, 21):
        sent = client(network, "transfer", "--to", recipient, "--amount", "3")
        assert sent["status"] == "success"
        assert client(network, "balance", recipient)[0]["balance"] == 3 * i


class ExtraFullnode:
    def __init__(self, network: Network, out: Path, single_seed: bool = False) -> None:
        written = soma(
            "config", "fullnode", "--dir", str(network.directory), "--out", str(out), "--json"
        )
        assert written.returncode == 0, written.stderr
        paths = json.loads(written.stdout)
        self.config = Path(paths["config"])
        self.api = paths["api_url"]
        if single_seed:
            config = yaml.safe_load(self.config.read_text())
            config["seed_peers"] = config["seed_peers"][:1]
            self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "soma", "node", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().startswith(b"READY")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.api}/status", timeout=10).json()
        return result

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _wait(condition: Any, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {limit_s} s: {what}")


def test_a_fullnode_with_one_seed_learns_every_node(network: Network, tmp_path: Path) -> None:
    extra = ExtraFullnode(network, tmp_path / "extra", single_seed=True)
    own_fullnode = read_key_file(network.directory / "fullnode" / "network.key", NetworkKeyPair)
    wanted = {own_fullnode.public_key.hex()}
    for i in range(4):
        config = load_node_config(network.directory / validator_config_name(i))
        wanted.add(config.keys.network.public_key.hex())
    extra.start()
    try:
        _wait(
            lambda: wanted <= {p["peer_id"] for p in httpx.get(f"{extra.api}/peers").json()},
            DISCOVERY_S,
            "every validator and the other fullnode among its peers",
        )
    finally:
        extra.stop()


def test_a_fullnode_killed_during_its_sync_resumes(network: Network, tmp_path: Path) -> None:
    target = httpx.get(f"{network.api}/status").json()["latest_certified_commit"]
    extra = ExtraFullnode(network, tmp_path / "killed")
    extra.start()
    try:
        _wait(lambda: extra.status()["latest_commit"] >= 20, SYNC_S, "some progress")
        reached = extra.status()["latest_commit"]
        assert reached < target, "synced too fast to be killed half way; give it more history"
        extra.kill()
        extra.start()
        # It starts from what it executed, not from genesis.
        assert extra.status()["latest_commit"] >= reached - 5
        _wait(lambda: extra.status()["latest_certified_commit"] >= target, SYNC_S, "caught up")
        ours = extra.status()
        theirs = httpx.get(f"{network.api}/summaries/{ours['latest_certified_commit']}").json()
        assert ours["state_root"] == theirs["state_root"] and ours["fork"] is None
    finally:
        extra.stop()
    assert not [line for line in processes_of(tmp_path / "killed") if "soma node" in line]
