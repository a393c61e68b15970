"""Randomized runs of the whole protocol: random latencies (so random delivery order),
many seeds, with and without f equivocators. Honest commit sequences must be prefixes of
one another with no block committed twice; with no faults every leader commits directly.

The default run covers 100 seeds with 4 validators and 25 with 7; the full sweep (100
seeds with 7 validators, more rounds) is marked slow.
"""

from __future__ import annotations

import logging

import pytest

from soma.sim.network import LatencyModel
from soma.sim.runner import SimConfig, run_simulation

logging.getLogger("soma").setLevel(logging.ERROR)


def _run(validators: int, equivocators: int, seed: int, rounds: int) -> None:
    result = run_simulation(
        SimConfig(
            validators=validators,
            rounds=rounds,
            seed=seed,
            equivocate=equivocators,
            latency=LatencyModel(5, 60),
        )
    )
    assert result.reached_target
    assert result.agreement.agreement, result.agreement.problems
    counts = [len(c) for c in result.commits.values()]
    assert min(counts) > 0
    if equivocators == 0:
        d = result.decisions
        assert d["direct_skips"] == d["indirect_skips"] == d["indirect_commits"] == 0, d
        assert d["direct_commits"] == min(counts)


@pytest.mark.parametrize("seed", range(100))
@pytest.mark.parametrize("equivocators", [0, 1])
def test_four_validators(seed: int, equivocators: int) -> None:
    _run(4, equivocators, seed, rounds=20)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("equivocators", [0, 2])
def test_seven_validators(seed: int, equivocators: int) -> None:
    _run(7, equivocators, seed, rounds=20)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(25, 125))
@pytest.mark.parametrize("equivocators", [0, 2])
def test_seven_validators_sweep(seed: int, equivocators: int) -> None:
    _run(7, equivocators, seed, rounds=40)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 200))
@pytest.mark.parametrize("equivocators", [0, 1])
def test_four_validators_long(seed: int, equivocators: int) -> None:
    _run(4, equivocators, seed, rounds=100)
