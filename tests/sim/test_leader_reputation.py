"""The leader schedule stops electing a validator that withholds its blocks: after a
schedule update its leader slots go to others, and rounds no longer wait out the leader
timeout for it."""

from __future__ import annotations

import itertools
import logging

from soma.consensus.parameters import ConsensusParameters
from soma.sim.runner import SimConfig, run_simulation

logging.getLogger("soma").setLevel(logging.ERROR)


def test_withholding_validator_loses_its_leader_slots() -> None:
    params = ConsensusParameters(commits_per_schedule_update=30)
    result = run_simulation(
        SimConfig(validators=7, rounds=150, seed=1, withhold=1, parameters=params)
    )
    assert result.agreement.agreement
    withholder = 6  # the simulator gives Byzantine roles to the highest indices
    observer = result.validators[0]
    assert observer.protocol is not None
    core = observer.protocol.core

    # Scored over committed sub-DAGs, the withholder has nothing; everyone else does.
    scores = core.schedule.swap_table.scores.scores
    assert scores[withholder] == 0
    assert all(s > 0 for i, s in enumerate(scores) if i != withholder)
    bad = core.schedule.swap_table.bad
    assert withholder in bad
    # Up to 30% of the stake (2 of 7) is swapped: the withholder and the next lowest.
    assert len(bad) <= 7 * params.bad_nodes_stake_percent // 100

    # The first schedule update happened at commit 30.
    commits = observer.commits()
    update_round = commits[29].leader.round

    # Rounds that waited out the leader timeout: the gap between two of our own
    # proposals reaches it only when the previous round's leader never showed up.
    own = [b for b in observer.store.scan_blocks_from(1) if b.author == observer.index]
    waits = [
        later.round
        for earlier, later in itertools.pairwise(own)
        if later.timestamp_ms - earlier.timestamp_ms >= params.leader_timeout_ms
    ]
    before = [r for r in waits if r <= update_round]
    after = [r for r in waits if r > update_round + params.wave_length]
    assert before, "the withholder's leader slots should cost timeouts before the update"
    assert after == [], f"rounds {after} still waited for a leader after the update"

    # And the new schedule never elects it again.
    last = max(b.round for b in own)
    assert all(withholder not in core.schedule.leaders(r) for r in range(last, last + 500))


def test_equal_stake_four_validators_keep_everyone_at_twenty_percent() -> None:
    """With 4 equal validators each holds 25% > 20%: at 20% nobody can be swapped."""
    params = ConsensusParameters(commits_per_schedule_update=20, bad_nodes_stake_percent=20)
    result = run_simulation(SimConfig(validators=4, rounds=60, seed=2, parameters=params))
    core = result.validators[0].protocol.core  # type: ignore[union-attr]
    assert core.schedule.swap_table.bad == set()


def test_four_validators_swap_out_a_crashed_one_at_the_default_share() -> None:
    """At the default 30%, one validator of four (25%) can be swapped: a crashed one is."""
    params = ConsensusParameters(commits_per_schedule_update=20)
    result = run_simulation(SimConfig(validators=4, rounds=120, seed=3, crash=1, parameters=params))
    assert result.agreement.agreement
    core = result.validators[0].protocol.core  # type: ignore[union-attr]
    assert core.schedule.swap_table.bad == {3}
