"""The consensus metrics are read off one protocol step's output: proposals, accepted
and rejected blocks, leader decisions by outcome and rule, timeouts, commits and their
latency from block creation."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from soma.consensus.authority import _record_metrics
from soma.consensus.committer.status import Decision, LeaderStatus
from soma.consensus.network.server import now_ms
from soma.consensus.protocol import ConsensusProtocol, Outgoing
from soma.types.consensus.block import Slot
from tests.metrics.samples import sample


def _protocol(highest: int, missing: int) -> ConsensusProtocol:
    fake = SimpleNamespace(
        dag=SimpleNamespace(highest_accepted_round=highest),
        sync=SimpleNamespace(missing_count=lambda: missing),
    )
    return cast(ConsensusProtocol, fake)


def test_one_step_of_the_protocol_in_the_metrics() -> None:
    before = {
        "proposed": sample("soma_consensus_blocks_proposed_total"),
        "accepted": sample("soma_consensus_blocks_accepted_total"),
        "bad_sig": sample("soma_consensus_blocks_rejected_total", reason="BLOCK_BAD_SIGNATURE"),
        "direct": sample(
            "soma_consensus_leader_decisions_total", outcome="committed", rule="direct"
        ),
        "skipped": sample(
            "soma_consensus_leader_decisions_total", outcome="skipped", rule="indirect"
        ),
        "timeouts": sample("soma_consensus_leader_timeouts_total"),
        "commits": sample("soma_consensus_commits_total"),
        "latency": sample("soma_consensus_commit_latency_seconds_count"),
    }
    now = now_ms()
    block = SimpleNamespace(round=12, timestamp_ms=now - 400)
    subdag = SimpleNamespace(index=7, blocks=(block, block, block))
    out = Outgoing(
        proposed=[cast(Any, block)],
        committed=[cast(Any, subdag)],
        decided=[
            LeaderStatus(Slot(10, 1), Decision.COMMIT, direct=True),
            LeaderStatus(Slot(9, 2), Decision.SKIP, direct=False),
            LeaderStatus(Slot(11, 3), Decision.UNDECIDED),
        ],
        accepted=4,
        rejected=["BLOCK_BAD_SIGNATURE", "BLOCK_BAD_SIGNATURE"],
        leader_timeouts=1,
    )
    _record_metrics(_protocol(highest=13, missing=5), out)
    assert sample("soma_consensus_round") == 12
    assert sample("soma_consensus_highest_accepted_round") == 13
    assert sample("soma_consensus_missing_blocks") == 5
    assert sample("soma_consensus_commit_index") == 7
    assert sample("soma_consensus_blocks_proposed_total") == before["proposed"] + 1
    assert sample("soma_consensus_blocks_accepted_total") == before["accepted"] + 4
    assert (
        sample("soma_consensus_blocks_rejected_total", reason="BLOCK_BAD_SIGNATURE")
        == before["bad_sig"] + 2
    )
    assert (
        sample("soma_consensus_leader_decisions_total", outcome="committed", rule="direct")
        == before["direct"] + 1
    )
    assert (
        sample("soma_consensus_leader_decisions_total", outcome="skipped", rule="indirect")
        == before["skipped"] + 1
    )
    assert sample("soma_consensus_leader_timeouts_total") == before["timeouts"] + 1
    assert sample("soma_consensus_commits_total") == before["commits"] + 1
    # One observation per committed block, each about 0.4 s old.
    assert sample("soma_consensus_commit_latency_seconds_count") == before["latency"] + 3
    assert sample("soma_consensus_commit_latency_seconds_bucket", le="0.3") < sample(
        "soma_consensus_commit_latency_seconds_bucket", le="10.0"
    )
