"""Property: any sequence of transfers, splits, merges and payments, including ones that
spend stale or foreign coins, conserves the supply and leaves every validator with the
same objects, effects and state roots, whatever their cache bounds."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soma.types.object import ObjectRef
from soma.types.transaction import (
    MergeCoins,
    PayCoins,
    SplitCoin,
    TransactionKind,
    TransferCoin,
)
from tests.authority.network import LocalValidators, all_fees, total_coin_supply

ACCOUNTS = 4

op = st.tuples(
    st.sampled_from(["transfer", "transfer_all", "split", "merge", "pay"]),
    st.integers(0, ACCOUNTS - 1),  # sender
    st.integers(0, ACCOUNTS - 1),  # recipient
    st.integers(1, 3_000_000),  # amount
    st.booleans(),  # use a stale ref (from the start of the run)
    st.integers(0, 99),  # which coin
)
batches = st.lists(st.lists(op, min_size=1, max_size=6), min_size=1, max_size=6)


def build(
    net: LocalValidators, item: tuple[str, int, int, int, bool, int], stale: list[ObjectRef]
) -> object:
    name, sender, recipient, amount, use_stale, pick = item
    state = net.live()[0]
    refs = stale if use_stale else [r for r in state.owned_objects(net.addresses[sender])]
    refs = [r for r in refs if (o := state.get_object(r.object_id)) is None or o.is_coin()]
    if not refs:
        return None
    coin = refs[pick % len(refs)]
    gas = refs[(pick + 1) % len(refs)]
    to = net.addresses[recipient]
    kind: TransactionKind
    if name == "transfer":
        kind = TransferCoin(coin, amount, to)
    elif name == "transfer_all":
        kind = TransferCoin(coin, None, to)
    elif name == "split":
        kind = SplitCoin(coin, (amount, amount // 2 + 1))
    elif name == "merge":
        if coin == gas:
            return None
        kind = MergeCoins((gas, coin))
    else:
        kind = PayCoins((coin,), (amount, 7), (to, net.addresses[sender]))
    return net.sign(sender, kind, gas)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=batches)
def test_random_coin_operations_conserve_supply_and_agree(plan: list[list[tuple]]) -> None:  # type: ignore[type-arg]
    asyncio.run(run_plan(plan))


async def run_plan(plan: list[list[tuple]]) -> None:  # type: ignore[type-arg]
    net = LocalValidators(
        cache_bounds=[(1, 1), (3, 5), (10_000, 100_000)],
        size=3,
        accounts=ACCOUNTS,
        coins_per_account=3,
        balance=5_000_000,
    )
    try:
        await net.start()
        first = net.live()[0]
        stale = [r for a in net.addresses for r in first.owned_objects(a)]
        digests = []
        for batch in plan:
            txs = [tx for item in batch if (tx := build(net, item, stale)) is not None]
            await net.order(txs)  # type: ignore[arg-type]
            digests += [tx.digest() for tx in txs]  # type: ignore[attr-defined]
        states = net.live()
        for state in states:
            assert total_coin_supply(state) + all_fees(state) == net.initial_supply
        assert len({s.state_root() for s in states}) == 1
        live = [s.live_refs() for s in states]
        assert all(refs == live[0] for refs in live)
        for digest in digests:
            effects = {s.get_effects(digest) for s in states}
            assert len(effects) == 1 and None not in effects
        assert not net.failures()
    finally:
        await net.stop()
        net.close()
