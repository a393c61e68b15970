"""Property: any sequence of joins, leaves, stake additions and withdrawals, sent by
validators and by accounts that are not, with epoch changes among them, conserves the
supply exactly (coins + stake + the current epoch's fees = genesis), and never makes a
committee outside min_validators..max_validators."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soma.authority.supply import genesis_supply
from soma.types.base import SomaAddress
from soma.types.transaction import (
    AddStake,
    RemoveValidator,
    SignedTransaction,
    TransactionKind,
    WithdrawStake,
)
from tests.authority.execution.helpers import (
    MIN_STAKE,
    PARAMETERS,
    STAKE,
    add_validator,
    chain_supply,
    epoch_fees,
    run_change_epoch,
    run_now,
    staked_chain,
)
from tests.authority.helpers import Chain

MIN_VALIDATORS, MAX_VALIDATORS = 4, 7
PROPERTY_PARAMETERS = dataclasses.replace(
    PARAMETERS, min_validators=MIN_VALIDATORS, max_validators=MAX_VALIDATORS
)

op = st.one_of(
    st.tuples(st.just("join"), st.integers(0, 7), st.integers(0, 3 * MIN_STAKE), st.integers(0, 9)),
    st.tuples(st.just("leave"), st.integers(0, 7), st.just(0), st.just(0)),
    st.tuples(st.just("add"), st.integers(0, 7), st.integers(1, 2 * STAKE), st.just(0)),
    st.tuples(st.just("withdraw"), st.integers(0, 7), st.integers(1, 2 * STAKE), st.just(0)),
    st.tuples(st.just("epoch"), st.just(0), st.integers(0, 10**6), st.just(0)),
)


def build(chain: Chain, item: tuple[str, int, int, int]) -> SignedTransaction | None:
    """The transaction of one step, or None if the sender has no coin to pay with."""
    name, who, amount, seed = item
    senders: list[SomaAddress] = [*chain.addresses, *chain.validator_addresses]
    sender = senders[who % len(senders)]
    coins = sorted(chain.coins(sender), key=lambda r: chain.balance(r.object_id), reverse=True)
    if not coins:
        return None
    gas, coin = coins[0], coins[-1]  # the coin may be the gas coin itself
    kind: TransactionKind
    if name == "join":
        kind = add_validator(sender, coin, amount, seed=60 + seed)
    elif name == "leave":
        kind = RemoveValidator()
    elif name == "add":
        kind = AddStake(coin, amount)
    else:
        kind = WithdrawStake(amount)
    return chain.sign(sender, kind, gas)


def check(chain: Chain, supply: int) -> None:
    assert chain_supply(chain).total + epoch_fees(chain) == supply
    state = chain.system_state()
    assert MIN_VALIDATORS <= state.validators.next_epoch_size() <= MAX_VALIDATORS


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=st.lists(op, min_size=1, max_size=25), stakes=st.permutations(range(5)))
def test_validator_transactions_and_epoch_changes_conserve_supply(
    plan: list[tuple[str, int, int, int]], stakes: list[int]
) -> None:
    chain = staked_chain(
        stakes=tuple(STAKE + 1_000 * s for s in stakes), parameters=PROPERTY_PARAMETERS
    )
    supply = genesis_supply(chain.genesis)
    check(chain, supply)
    for item in [*plan, ("epoch", 0, 0, 0)]:
        if item[0] == "epoch":
            run_change_epoch(chain, start_ms=item[2])
            committee = chain.system_state().committee()
            assert MIN_VALIDATORS <= committee.size <= MAX_VALIDATORS
            assert chain_supply(chain).total == supply  # every fee paid out
        else:
            tx = build(chain, item)
            if tx is not None:
                run_now(chain, tx)
        check(chain, supply)
