"""The simulator swept over every fault mix it offers: at least 10,000 seeded runs in
parallel processes, each required to agree and to reach its target (committing). Any
failure is reported with the exact `soma sim` command that reproduces it.

Slow (tens of minutes on two cores): `pytest -m slow tests/sim/test_sweep_slow.py`;
`SOMA_SWEEP_RUNS` changes the number of runs, `SOMA_SWEEP_FIRST_SEED` the first seed of
each mix (to sweep other seeds than the last time).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from soma.sim.network import LatencyModel
from soma.sim.runner import Partition, SimConfig, run_simulation

ROUNDS = 40
#: Each mix as `soma sim` options; every fault kind appears alone and in company.
MIXES: list[dict[str, Any]] = [
    {"--crash": 1},
    {"--equivocate": 1},
    {"--withhold": 1},
    {"--bad-blocks": 1},
    {"--partition-at": "15:3000"},
    {"--latency-ms": "50:400"},
    {"--loss": 0.1},
    {"--leaders-per-round": 2},
    {"--crash": 1, "--loss": 0.05, "--latency-ms": "20:200"},
    {"--bad-blocks": 1, "--partition-at": "20:3000"},
    {"--equivocate": 1, "--partition-at": "10:5000", "--leaders-per-round": 2},
    {"--withhold": 1, "--partition-at": "20:2000", "--latency-ms": "50:300"},
    {"--validators": 7, "--crash": 1, "--bad-blocks": 1, "--partition-at": "15:4000"},
    {"--validators": 7, "--equivocate": 1, "--withhold": 1, "--loss": 0.05},
    {"--validators": 7, "--leaders-per-round": 3, "--crash": 2, "--latency-ms": "10:300"},
    {"--bad-blocks": 1, "--loss": 0.1, "--latency-ms": "50:400", "--leaders-per-round": 2},
]


def command(options: dict[str, Any], seed: int) -> str:
    flags = " ".join(f"{k} {v}" for k, v in options.items())
    return f"soma sim --rounds {ROUNDS} --seed {seed} {flags}"


def config(options: dict[str, Any], seed: int) -> SimConfig:
    partition = options.get("--partition-at")
    return SimConfig(
        validators=options.get("--validators", 4),
        rounds=ROUNDS,
        seed=seed,
        latency=LatencyModel.parse(options.get("--latency-ms", "10:50")),
        loss=options.get("--loss", 0.0),
        crash=options.get("--crash", 0),
        equivocate=options.get("--equivocate", 0),
        withhold=options.get("--withhold", 0),
        bad_blocks=options.get("--bad-blocks", 0),
        partition=None if partition is None else Partition.parse(partition),
        leaders_per_round=options.get("--leaders-per-round", 1),
        # 40 rounds take seconds of virtual time; a run still short of them after two
        # minutes has lost liveness (and would take very long to run out the default).
        max_virtual_ms=120_000,
    )


def run_one(job: tuple[int, int]) -> str | None:
    """None if the run agreed and reached its target, else what went wrong and how to
    reproduce it."""
    logging.getLogger("soma").setLevel(logging.CRITICAL)
    mix, seed = job
    options = MIXES[mix]
    result = run_simulation(config(options, seed))
    problems = []
    if not result.agreement.agreement:
        problems.append(f"disagreement {result.agreement.problems[:3]}")
    if not result.reached_target:
        problems.append("missed target")
    return None if not problems else f"{command(options, seed)}: {'; '.join(problems)}"


@pytest.mark.slow
def test_ten_thousand_seeded_runs_over_every_fault_mix_agree_and_reach_their_target() -> None:
    runs = int(os.environ.get("SOMA_SWEEP_RUNS", "10000"))
    first = int(os.environ.get("SOMA_SWEEP_FIRST_SEED", "0"))
    per_mix = -(-runs // len(MIXES))
    jobs = [(mix, seed) for mix in range(len(MIXES)) for seed in range(first, first + per_mix)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failures = [f for f in pool.map(run_one, jobs, chunksize=16) if f is not None]
    print(f"sweep: {len(jobs)} runs over {len(MIXES)} fault mixes, {len(failures)} failures")
    assert not failures, "\n".join(failures[:50])
