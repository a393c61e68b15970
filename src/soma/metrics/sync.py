"""State sync and P2P metrics: how far this node follows the certified chain, from
whom, and the bytes its P2P calls carry.

Updated by `soma.sync.state_sync.StateSync` and the P2P client and server.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

HIGHEST_SYNCED_COMMIT = Gauge(
    "soma_state_sync_highest_synced_commit",
    "The last commit (global index) state sync handed to execution.",
    registry=None,
)
HIGHEST_CERTIFIED_COMMIT = Gauge(
    "soma_state_sync_highest_certified_commit",
    "The highest certified commit a peer said it can serve.",
    registry=None,
)
LAG = Gauge(
    "soma_state_sync_lag_commits",
    "Commits between the highest a peer can serve and the last handed to execution.",
    registry=None,
)
COMMITS_SYNCED = Counter(
    "soma_state_sync_commits_synced",
    "Certified commits state sync handed to execution.",
    registry=None,
)
SYNC_PEERS = Gauge(
    "soma_state_sync_peers", "Peers state sync may ask now (known and not banned).", registry=None
)
PEERS_DROPPED = Counter(
    "soma_state_sync_peers_dropped",
    "Peers state sync set aside for a while, by reason (misbehaved, unreachable).",
    ["reason"],
    registry=None,
)
P2P_PEERS = Gauge("soma_p2p_peers", "Peers discovery knows and has not dropped.", registry=None)
P2P_BYTES_SENT = Counter(
    "soma_p2p_sent_bytes",
    "Bytes of P2P messages sent (requests made and answers given), by method.",
    ["method"],
    registry=None,
)
P2P_BYTES_RECEIVED = Counter(
    "soma_p2p_received_bytes",
    "Bytes of P2P messages received (answers and requests), by method.",
    ["method"],
    registry=None,
)
