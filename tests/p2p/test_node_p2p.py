"""SomaNode runs the P2P service: validators of a `soma genesis` network serve it on
their configs' P2P addresses, learn each other's signed infos, and a fullnode seeded
from its config learns them all; stopping the nodes leaves no task behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from soma.node.local_network import create_local_network
from soma.node.node import SomaNode
from soma.p2p.parameters import DiscoveryParameters
from soma.p2p.peer_table import KnownPeer
from soma.p2p.service import P2pService
from soma.types.config import load_node_config
from soma.types.crypto import Ed25519PublicKey

from .test_discovery import wait_for


def heard_from(peers: list[KnownPeer], peer_ids: set[Ed25519PublicKey]) -> bool:
    """A signed info of each of `peer_ids` is held (not only a committee entry)."""
    return peer_ids <= {p.peer_id for p in peers if p.timestamp_ms is not None}


# Two validators with consensus and a fullnode in one event loop: under a loaded CI
# machine discovery calls time out and peers get dropped for a minute. The same is
# covered with real processes by tests/e2e/test_fullnode.py; this runs with the sweeps.
@pytest.mark.slow
async def test_validators_and_a_fullnode_find_each_other(tmp_path: Path) -> None:
    net = create_local_network(tmp_path / "net", validators=2, accounts=1)
    configs = [load_node_config(p) for p in net.validator_configs]
    fullnode_config = load_node_config(net.fullnode_config)
    assert fullnode_config.p2p_address is not None
    nodes = [SomaNode(c) for c in configs]
    fullnode = P2pService(
        fullnode_config.keys.network,
        fullnode_config.p2p_address,
        seeds=fullnode_config.seed_peers,
        parameters=DiscoveryParameters(interval_ms=50),
    )
    before = asyncio.all_tasks()
    try:
        for n in nodes:
            await n.start()
        await fullnode.start()
        p2ps = [n.p2p for n in nodes]
        assert all(p is not None for p in p2ps)
        ids = {c.keys.network.public_key for c in configs} | {fullnode.peer_id}
        for p2p, config in zip(p2ps, configs, strict=True):
            assert p2p is not None and p2p.address == config.p2p_address
        await wait_for(
            lambda: (
                all(p is not None and heard_from(p.peers(), ids - {p.peer_id}) for p in p2ps)
                and heard_from(fullnode.peers(), ids - {fullnode.peer_id})
            ),
            "validators and the fullnode hear from each other",
        )
    finally:
        await fullnode.stop()
        for n in nodes:
            await n.stop()
    assert all(n.p2p is None for n in nodes)
    left = {t for t in asyncio.all_tasks() - before if not t.done()} - {asyncio.current_task()}
    assert not left, left
