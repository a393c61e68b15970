"""Consensus metrics: rounds, blocks, leader decisions, commits, peers.

Updated by `soma.consensus.authority.ConsensusAuthority` from what the protocol asks
it to carry out (`Outgoing`), so the sans-IO core stays free of them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: Seconds from a block's creation to its commit: a healthy local network commits in
#: a few hundred milliseconds, a stalled one in tens of seconds.
COMMIT_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)

ROUND = Gauge(
    "soma_consensus_round", "Round of the last block this validator proposed.", registry=None
)
HIGHEST_ACCEPTED_ROUND = Gauge(
    "soma_consensus_highest_accepted_round",
    "Highest round of a block accepted into this validator's DAG.",
    registry=None,
)
BLOCKS_PROPOSED = Counter(
    "soma_consensus_blocks_proposed", "Blocks this validator proposed.", registry=None
)
BLOCKS_ACCEPTED = Counter(
    "soma_consensus_blocks_accepted",
    "Blocks accepted into the DAG: verified, with all their ancestors present (own and peers').",
    registry=None,
)
BLOCKS_REJECTED = Counter(
    "soma_consensus_blocks_rejected",
    "Blocks from peers rejected, by reason (the rejection's error code, or undecodable).",
    ["reason"],
    registry=None,
)
LEADER_DECISIONS = Counter(
    "soma_consensus_leader_decisions",
    "Leader slots decided, by outcome (committed, skipped) and rule (direct, indirect).",
    ["outcome", "rule"],
    registry=None,
)
LEADER_TIMEOUTS = Counter(
    "soma_consensus_leader_timeouts",
    "Blocks proposed after the leader timeout, without every leader of the round below.",
    registry=None,
)
COMMIT_INDEX = Gauge(
    "soma_consensus_commit_index",
    "Index of the last commit of this epoch's consensus.",
    registry=None,
)
COMMITS = Counter(
    "soma_consensus_commits", "Commits of consensus (decided here or synced).", registry=None
)
COMMIT_LATENCY = Histogram(
    "soma_consensus_commit_latency_seconds",
    "From a committed block's creation (its timestamp) to its commit on this validator.",
    buckets=COMMIT_LATENCY_BUCKETS,
    registry=None,
)
MISSING_BLOCKS = Gauge(
    "soma_consensus_missing_blocks",
    "Blocks named as ancestors but not held yet (being fetched from peers).",
    registry=None,
)
CONNECTED_PEERS = Gauge(
    "soma_consensus_connected_peers",
    "Committee members whose block stream to this validator is open.",
    registry=None,
)
