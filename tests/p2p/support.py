"""Shared pieces of the P2P tests: keys from seeds, signed infos, a table at a time."""

from __future__ import annotations

import random

from soma.p2p.node_info import SignedNodeInfo
from soma.p2p.parameters import DiscoveryParameters
from soma.p2p.peer_table import DialTarget, PeerTable
from soma.types.crypto import Ed25519PublicKey, NetworkKeyPair

T0 = 1_700_000_000_000


def key(i: int) -> NetworkKeyPair:
    return NetworkKeyPair(bytes([i]) * 32)


def info(i: int, timestamp_ms: int = T0, port: int | None = None) -> SignedNodeInfo:
    return SignedNodeInfo.sign(key(i), [f"node-{i}:{port or 1000 + i}"], timestamp_ms)


def table(
    i: int = 0,
    parameters: DiscoveryParameters | None = None,
    committee: dict[Ed25519PublicKey, str] | None = None,
    seeds: tuple[DialTarget, ...] = (),
    seed: int = 1,
) -> PeerTable:
    return PeerTable(
        key(i),
        [f"node-{i}:{1000 + i}"],
        parameters or DiscoveryParameters(),
        random.Random(seed),
        committee=committee,
        seeds=seeds,
    )
