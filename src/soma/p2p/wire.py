"""The P2P service's name, size caps, and its discovery messages (BCS structs).

Requests and responses travel as raw bytes through generic gRPC handlers (no protoc),
one struct each, as on the consensus service. Other components (state sync) declare
their own messages and add their methods to the same service (`P2pServer.add_unary`).
"""

from __future__ import annotations

from soma.p2p.node_info import SignedNodeInfo
from soma.types.bcs import BcsStruct

SERVICE = "soma.p2p.P2p"
EXCHANGE_PEERS = "ExchangePeers"

#: Largest request any method takes (requests are small: a peer must not make us decode
#: megabytes to refuse one), and the largest response a server sends or a client takes.
MAX_REQUEST_BYTES = 1024 * 1024
MAX_RESPONSE_BYTES = 64 * 1024 * 1024

#: Most node infos in one ExchangePeers reply (besides the server's own).
MAX_PEERS_PER_REPLY = 200
#: An ExchangePeers request is one signed node info (at most about 2 KiB).
EXCHANGE_PEERS_MAX_REQUEST_BYTES = 8 * 1024
#: A reply of `MAX_PEERS_PER_REPLY` + 1 node infos of the largest size fits.
EXCHANGE_PEERS_MAX_RESPONSE_BYTES = 1024 * 1024


def method_path(name: str) -> str:
    """The gRPC path of one of the service's methods."""
    return f"/{SERVICE}/{name}"


class ExchangePeersRequest(BcsStruct):
    """The caller's own signed info: so the server learns the caller as it answers."""

    info: SignedNodeInfo


class ExchangePeersResponse(BcsStruct):
    """The server's own signed info, and up to `MAX_PEERS_PER_REPLY` others it knows,
    chosen at random."""

    info: SignedNodeInfo
    peers: tuple[SignedNodeInfo, ...]
