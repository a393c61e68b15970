"""Coin selection rules, without a server: which coins a payment spends, how the gas
budget is set, and how merges are planned."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.sdk.coins import (
    GAS_BUDGET_FEES,
    Coin,
    CoinPicker,
    can_pay_gas,
    gas_budget,
    largest_first,
    merge_group_sizes,
    merge_round,
    merge_transactions,
    select_coins,
)
from soma.sdk.errors import ApiError
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import ObjectDigest
from soma.types.object import ObjectRef

OWNER = SomaAddress.from_int(7)
DIGEST = ObjectDigest(bytes(32))


def coins_of(balances: list[int]) -> list[Coin]:
    return [Coin(ObjectRef(ObjectID.from_int(i + 1), 1, DIGEST), b) for i, b in enumerate(balances)]


def merged(group: list[Coin], fee: int) -> Coin:
    """A group's target after its merge: the group's total less the fee."""
    return Coin(group[0].ref, sum(c.balance for c in group) - fee)


def run_round(coins: list[Coin], groups: list[list[Coin]], fee: int) -> list[Coin]:
    """The coins a round of merges leaves, as the chain would."""
    in_groups = {c.object_id for g in groups for c in g}
    rest = [c for c in coins if c.object_id not in in_groups]
    return largest_first(rest + [merged(g, fee) for g in groups])


def test_largest_coin_alone_when_it_covers() -> None:
    coins = coins_of([5, 100, 30])
    assert [c.balance for c in select_coins(coins, 90, 10, OWNER)] == [100]


def test_takes_largest_first_until_covered() -> None:
    coins = coins_of([5, 100, 30, 50])
    assert [c.balance for c in select_coins(coins, 150, 10, OWNER)] == [100, 50, 30]


def test_shortfall_names_holdings_and_need() -> None:
    with pytest.raises(ApiError) as e:
        select_coins(coins_of([5, 100]), 100, 10, OWNER)
    assert e.value.api_code == "INSUFFICIENT_BALANCE"
    assert e.value.message == f"{OWNER} holds 105 in 2 coins; 100 + fee 10 needed"


def test_merges_are_counted_in_the_need() -> None:
    # Limit 3: five coins of 10 need one merge (3 -> 1) first, so two fees.
    picker = CoinPicker(30, 1, limit=3)
    assert not picker.offer(coins_of([10, 10, 10]))
    assert picker.needed() == 31
    assert picker.offer(coins_of([10]))
    assert len(picker.chosen) == 4
    assert picker.needed() == 32


def test_picker_stops_taking_once_covered() -> None:
    picker = CoinPicker(10, 1)
    assert picker.offer(coins_of([50, 40, 30]))
    assert [c.balance for c in picker.chosen] == [50]


def test_gas_budget_is_ten_fees_at_most_the_coin() -> None:
    coin = coins_of([1_000])[0]
    assert gas_budget(10, coin) == GAS_BUDGET_FEES * 10
    assert gas_budget(200, coin) == 1_000
    assert gas_budget(1_000, coin) == 1_000


def test_gas_budget_refuses_a_coin_below_the_fee() -> None:
    with pytest.raises(ApiError) as e:
        gas_budget(11, coins_of([10])[0])
    assert e.value.api_code == "INSUFFICIENT_GAS"


def test_merge_sizes_for_the_real_limit() -> None:
    assert merge_group_sizes(256) == []
    assert merge_group_sizes(257) == [2]
    assert merge_group_sizes(600) == [256, 90]
    assert merge_transactions(600) == 2


def test_merge_round_leaders_are_the_largest_and_the_smallest_merge_away() -> None:
    coins = largest_first(coins_of(list(range(1, 11))))
    groups = merge_round(coins, limit=4)
    # Ten coins to at most four: remove six, in two full groups of four.
    assert [[c.balance for c in g] for g in groups] == [[10, 6, 5, 4], [9, 3, 2, 1]]


def test_merge_round_leads_only_with_coins_that_pay_the_fee() -> None:
    coins = largest_first(coins_of([100, *[1] * 9]))
    groups = merge_round(coins, limit=4, fee=10)
    assert [[c.balance for c in g] for g in groups] == [[100, 1, 1, 1]]
    with pytest.raises(ApiError) as e:
        merge_round(coins[1:], limit=4, fee=10)
    assert e.value.api_code == "INSUFFICIENT_GAS"


@settings(max_examples=300, deadline=None)
@given(
    balances=st.lists(st.integers(0, 10_000), max_size=60),
    amount=st.integers(1, 200_000),
    fee=st.integers(0, 50),
    limit=st.integers(2, 8),
)
def test_selection_properties(balances: list[int], amount: int, fee: int, limit: int) -> None:
    coins = coins_of(balances)
    ordered = largest_first(coins)

    def need(count: int) -> int:
        return amount + fee * (1 + merge_transactions(count, limit))

    prefix = [sum(c.balance for c in ordered[:k]) for k in range(len(ordered) + 1)]
    coverable = [k for k in range(1, len(ordered) + 1) if prefix[k] >= need(k)]
    try:
        chosen = select_coins(coins, amount, fee, OWNER, limit)
    except ApiError as e:
        assert e.api_code == "INSUFFICIENT_BALANCE"
        assert not coverable
        # Possible whenever the coins one transaction may name cover amount + fee.
        assert prefix[min(limit, len(ordered))] < amount + fee
        return
    # Largest first, the shortest prefix that covers the amount and every fee.
    assert chosen == ordered[: len(chosen)]
    assert len(chosen) == coverable[0]
    # After the planned merges, one transaction of at most `limit` coins pays it all,
    # every merge and the payment paid by a coin that holds the fee...
    current = chosen
    try:
        while len(current) > limit:
            groups = merge_round(current, limit, fee)
            assert all(2 <= len(g) <= limit and can_pay_gas(fee, g[0]) for g in groups)
            current = run_round(current, groups, fee)
            current = select_coins(current, amount, fee, OWNER, limit)
        gas_budget(fee, current[0])
    except ApiError as e:
        # ...unless no coin can: always an error before anything is sent.
        assert e.api_code == "INSUFFICIENT_GAS"
        assert len(chosen) > limit or not can_pay_gas(fee, chosen[0])
        return
    assert len(current) <= limit
    assert sum(c.balance for c in current) >= amount + fee


@settings(max_examples=300, deadline=None)
@given(count=st.integers(2, 3_000), limit=st.integers(2, 40))
def test_merge_plan_merges_everything_in_the_fewest_transactions(count: int, limit: int) -> None:
    coins = largest_first(coins_of([(i * 7919) % 1000 + 1 for i in range(count)]))
    total = sum(c.balance for c in coins)
    transactions = 0
    while len(coins) > 1:
        groups = merge_round(coins, limit) or [coins]
        ids = [c.object_id for g in groups for c in g]
        assert len(ids) == len(set(ids))
        for group in groups:
            assert 2 <= len(group) <= limit
            assert group[0].balance == max(c.balance for c in group)
        # A round's merge targets (and gas coins) are its largest coins.
        assert [g[0] for g in groups] == coins[: len(groups)]
        transactions += len(groups)
        coins = run_round(coins, groups, fee=0)
    assert coins[0].balance == total
    assert transactions == math.ceil((count - 1) / (limit - 1))
