"""Consensus parameters: timing, sizes, garbage collection and the commit rule's shape.

One value per validator process; every validator of a committee should run the same
`wave_length`, `leaders_per_round`, `pipeline`, `gc_depth` and schedule settings, since
they decide which leaders commit.
"""

from __future__ import annotations

import dataclasses

from soma.types.error import SomaError


class ConsensusConfigError(SomaError):
    code = "CONSENSUS_CONFIG"


@dataclasses.dataclass(frozen=True)
class ConsensusParameters:
    #: Wait this long past a round's quorum for its leader(s) before proposing anyway.
    leader_timeout_ms: int = 250
    #: Never propose two blocks closer together than this (keeps rounds from racing).
    min_round_delay_ms: int = 50
    #: Blocks timestamped further than this into the receiver's future are rejected.
    max_forward_time_drift_ms: int = 500
    #: Rounds per wave of the commit rule (leader, voting, decision).
    wave_length: int = 3
    #: A leader slot in every round (Mysticeti's pipelining) rather than every wave.
    pipeline: bool = True
    #: Leader slots per round.
    leaders_per_round: int = 1
    #: Blocks older than (last committed leader round - gc_depth) are garbage.
    gc_depth: int = 50
    #: Limits on one block's payload.
    max_block_transactions: int = 10_000
    max_block_bytes: int = 2 * 1024 * 1024
    max_transaction_bytes: int = 256 * 1024
    #: Leader schedule: recompute reputation every this many commits, and swap out the
    #: authorities holding the lowest this-many percent of stake by score. 30% (at most
    #: f) lets a committee of four swap out its one crashed or slow validator; with 20%
    #: nobody holding a quarter of the stake could ever be swapped, and every round it
    #: leads would wait out the leader timeout. About five seconds of commits per update.
    commits_per_schedule_update: int = 50
    bad_nodes_stake_percent: int = 30
    #: Commits (with their blocks) kept in the consensus store behind the last one; older
    #: ones are pruned, so the store does not grow for ever. A peer further behind than
    #: this cannot catch up through commit sync: it catches up by state sync and resumes
    #: consensus from there (`consensus.history`). About three hours of commits at ten
    #: a second.
    retained_commits: int = 100_000
    #: Synchronization: blocks per fetch response, concurrent fetches per peer, request
    #: timeout, and how often still-missing blocks are asked of random peers.
    max_blocks_per_fetch: int = 1_000
    #: Serialized blocks in one fetch response (below the 64 MiB gRPC message cap).
    max_fetch_response_bytes: int = 32 * 1024 * 1024
    max_fetches_per_peer: int = 2
    fetch_timeout_ms: int = 2_000
    periodic_sync_interval_ms: int = 500

    @property
    def history_commits(self) -> int:
        """Commits a node resuming consensus at a commit it did not make needs before it:
        two full leader-schedule windows and what the current one holds (the scores in
        force), and every commit whose blocks are still above the GC round."""
        return 3 * self.commits_per_schedule_update + (self.gc_depth + 1) * self.leaders_per_round

    def __post_init__(self) -> None:
        checks = [
            (self.wave_length >= 3, "wave_length must be at least 3"),
            (self.leaders_per_round >= 1, "leaders_per_round must be at least 1"),
            (self.gc_depth >= 2 * self.wave_length, "gc_depth must be at least 2 waves"),
            (self.leader_timeout_ms > 0, "leader_timeout_ms must be positive"),
            (self.min_round_delay_ms >= 0, "min_round_delay_ms must not be negative"),
            (self.max_block_transactions >= 0, "max_block_transactions must not be negative"),
            (self.max_block_bytes > 0, "max_block_bytes must be positive"),
            (self.commits_per_schedule_update > 0, "commits_per_schedule_update must be > 0"),
            (0 <= self.bad_nodes_stake_percent <= 33, "bad_nodes_stake_percent must be 0-33"),
            (
                self.retained_commits >= 2 * self.history_commits,
                f"retained_commits must be at least {2 * self.history_commits} (twice the"
                " commits a node resuming consensus needs: three schedule updates and the"
                " GC depth)",
            ),
            (self.max_blocks_per_fetch > 0, "max_blocks_per_fetch must be positive"),
            (self.max_fetch_response_bytes > 0, "max_fetch_response_bytes must be positive"),
            (self.max_fetches_per_peer > 0, "max_fetches_per_peer must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConsensusConfigError(message)
