"""soma.authority.supply: what each object holds, the supply a genesis creates, and the
fees not yet paid out."""

from __future__ import annotations

import dataclasses

import pytest

from soma.authority.supply import (
    Supply,
    genesis_supply,
    live_supply,
    object_value,
    total_stake,
    unpaid_fees,
)
from soma.types.error import TransactionError
from soma.types.object import GENESIS_VERSION
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, ValidatorSet
from soma.types.transaction import AddStake, TransactionData, TransferCoin
from tests.authority.execution.helpers import (
    MIN_STAKE,
    STAKE,
    change_epoch_tx,
    run_change_epoch,
    run_now,
    staked_chain,
)
from tests.authority.helpers import BALANCE, FEE


def test_a_coin_holds_its_balance_and_the_system_state_every_stake() -> None:
    chain = staked_chain(stakes=(STAKE, 2 * STAKE, 3 * STAKE, 4 * STAKE))
    coin = chain.obj(chain.coins(0)[0].object_id)
    assert object_value(coin) == BALANCE
    system = chain.obj(SYSTEM_STATE_OBJECT_ID)
    assert object_value(system) == 10 * STAKE
    # Pending validators count with their next-epoch stake; voting stake does not count.
    state = chain.system_state()
    joining = dataclasses.replace(
        state.validators.active[0], voting_stake=0, next_epoch_stake=MIN_STAKE
    )
    withdrawn = dataclasses.replace(state.validators.active[1], next_epoch_stake=1)
    changed = dataclasses.replace(
        state,
        validators=ValidatorSet(
            (state.validators.active[0], withdrawn, *state.validators.active[2:]), (joining,), ()
        ),
    )
    second = state.validators.active[1].next_epoch_stake
    assert total_stake(changed) == 10 * STAKE - second + 1 + MIN_STAKE
    assert object_value(changed.to_object(GENESIS_VERSION, system.previous_transaction)) == (
        total_stake(changed)
    )


def test_genesis_supply_is_its_coins_and_stakes() -> None:
    chain = staked_chain(accounts=2, coins_per_account=3)
    coins = (2 + 4) * 3 * BALANCE  # users' and validators' coins
    assert genesis_supply(chain.genesis) == coins + 4 * STAKE
    with pytest.raises(TransactionError, match="not a genesis"):
        genesis_supply(change_epoch_tx(1).data)
    transfer = TransactionData(
        TransferCoin(chain.coins(0)[0], 1, chain.addresses[1]),
        chain.addresses[0],
        chain.coins(0)[1],
        10 * FEE,
        None,
    )
    with pytest.raises(TransactionError):
        genesis_supply(transfer)


def test_live_supply_splits_coins_stake_and_fees() -> None:
    chain = staked_chain()
    validator = chain.validator_addresses[0]
    coin, gas = chain.coins(validator)[:2]
    run_now(chain, chain.sign(validator, AddStake(coin, 123), gas))
    objects = [chain.obj(ref.object_id) for ref in chain.store.live_refs()]
    supply = live_supply(objects, pending_fees=FEE)
    assert supply.stake == 4 * STAKE + 123
    assert supply.coins == (3 + 4) * 4 * BALANCE - 123 - FEE
    assert supply.pending_fees == FEE
    assert supply.total == genesis_supply(chain.genesis)
    assert Supply(1, 2, 3).total == 6


def test_unpaid_fees_are_those_of_the_current_epoch() -> None:
    chain = staked_chain()
    coin, gas = chain.coins(0)[:2]
    run_now(chain, chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    effects = list(chain.store.effects.values())
    assert unpaid_fees(effects, 0) == FEE
    run_change_epoch(chain)
    coin, gas, other = chain.coins(0)[:3]
    run_now(chain, chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), gas))
    stale = chain.sign(0, TransferCoin(coin, 5, chain.addresses[1]), other)
    assert not run_now(chain, stale).status.is_success()  # failed, but charged
    effects = list(chain.store.effects.values())
    assert unpaid_fees(effects, 0) == FEE  # paid out by the epoch change, never again
    assert unpaid_fees(effects, 1) == 2 * FEE
