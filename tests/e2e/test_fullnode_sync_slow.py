"""Acceptance, as the issue states it: a network runs transfers for 60 s; then a new
fullnode (`soma config fullnode`, `soma node --config`) reaches, within 60 s, a
`latest_certified_commit` at least as high as the one the network's own fullnode
reported when it started, and the two report the same `state_root` for the same
`latest_certified_commit` once the load has stopped. Slow: `pytest -m slow`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from soma.bench.transfers_bench import drive_transfers
from soma.node.layout import validator_config_name
from soma.node.local_network import validator_routes
from soma.orchestrator.remote_reader import RemoteReader
from soma.types.config import load_keystore, load_node_config
from tests.e2e.local_network import Network
from tests.e2e.test_fullnode import ExtraFullnode, soma

pytestmark = pytest.mark.slow
LOAD_S = 60.0
CATCH_UP_S = 60.0


async def _load_for(directory: Path, seconds: float) -> int:
    configs = [load_node_config(directory / validator_config_name(i)) for i in range(4)]
    reader = await RemoteReader.connect(*validator_routes(configs))
    try:
        deadline = time.monotonic() + seconds
        keys = load_keystore(directory / "keystore.yaml")
        load = await drive_transfers(reader, keys, lambda _: time.monotonic() >= deadline, None)
        return int(load["transfers"])
    finally:
        await reader.close()


def test_a_new_fullnode_catches_up_after_a_minute_of_load(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    assert soma("genesis", "--dir", str(directory), "--accounts", "500").returncode == 0
    network = Network(directory)
    extra: ExtraFullnode | None = None
    try:
        transfers = asyncio.run(_load_for(directory, LOAD_S))
        assert transfers > 1_000
        extra = ExtraFullnode(network, tmp_path / "extra")
        reported = httpx.get(f"{network.api}/status").json()["latest_certified_commit"]
        started = time.monotonic()
        extra.start()
        while extra.status()["latest_certified_commit"] < reported:
            assert time.monotonic() - started < CATCH_UP_S, "not caught up within 60 s"
            time.sleep(0.2)
        # Same commit, same state root (the load has stopped: both converge).
        deadline = time.monotonic() + 30
        while True:
            ours, theirs = extra.status(), httpx.get(f"{network.api}/status").json()
            if ours["latest_certified_commit"] == theirs["latest_certified_commit"]:
                assert ours["state_root"] == theirs["state_root"]
                break
            assert time.monotonic() < deadline, (ours, theirs)
            time.sleep(0.05)
    finally:
        if extra is not None:
            extra.stop()
        network.stop()
