"""The consensus benchmark's settings: refused when they cannot give a meaningful run,
and batches sized to fit one block."""

from __future__ import annotations

import pytest

from soma.bench.consensus_bench import BATCH_TRANSACTIONS, BenchConfigError, ConsensusBenchConfig
from soma.consensus.parameters import ConsensusParameters


def test_batches_fit_one_block() -> None:
    limit = ConsensusParameters().max_block_bytes
    assert ConsensusBenchConfig(tx_size=512).batch_transactions() == BATCH_TRANSACTIONS
    big = ConsensusBenchConfig(tx_size=10_000).batch_transactions()
    assert big == limit // 10_000
    assert big * 10_000 <= limit
    few = ConsensusBenchConfig(parameters={"max_block_transactions": 7}).batch_transactions()
    assert few == 7
    assert ConsensusBenchConfig(tx_size=200_000).batch_transactions() == limit // 200_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"validators": 0},
        {"duration_s": 0},
        {"duration_s": float("nan")},
        {"tx_size": 7},
        {"rate": 0},
        {"crash": -1},
        {"crash": 2},
        {"crash": 1, "duration_s": 5},
        {"parameters": {"no_such_field": 1}},
        {"parameters": {"wave_length": 2}},
    ],
)
def test_meaningless_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(BenchConfigError):
        ConsensusBenchConfig(**kwargs)  # type: ignore[arg-type]


async def test_an_unknown_baseline_is_refused_before_anything_starts() -> None:
    from soma.bench.consensus_bench import run_consensus_bench

    with pytest.raises(BenchConfigError):
        await run_consensus_bench(ConsensusBenchConfig(), baseline="paxos")
