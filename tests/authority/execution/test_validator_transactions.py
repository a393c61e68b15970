"""The validator transactions' rules: who may join, leave, add or withdraw stake, and
what each refusal says. A refusal charges the fee and changes nothing else; a success
moves value between coins and stake without creating or destroying any."""

from __future__ import annotations

import dataclasses

import pytest

from soma.types.base import ObjectID, SomaAddress
from soma.types.effects import (
    ExecutionFailure,
    ExecutionFailureStatus,
    ExecutionSuccess,
    InsufficientCoinBalance,
    InsufficientStake,
    InvalidArguments,
    TransactionEffects,
    ValidatorAlreadyExists,
    ValidatorNotFound,
)
from soma.types.object import AddressOwner
from soma.types.system_state import Validator
from soma.types.transaction import (
    AddStake,
    AddValidator,
    RemoveValidator,
    SignedTransaction,
    WithdrawStake,
)
from tests.authority.execution.helpers import (
    MIN_STAKE,
    PARAMETERS,
    STAKE,
    add_validator,
    chain_supply,
    joining_metadata,
    run_change_epoch,
    staked_chain,
    validator_of,
)
from tests.authority.helpers import BALANCE, FEE, Chain

NOT_OWN = "is not a validator: only a validator's own account can change its stake"


@pytest.fixture
def chain() -> Chain:
    return staked_chain()


def succeeds(chain: Chain, tx: SignedTransaction) -> TransactionEffects:
    """Run a transaction that must succeed: the supply (coins and stake) loses the fee,
    nothing more."""
    before = chain_supply(chain).total
    effects = chain.run(tx).effects
    assert effects.status == ExecutionSuccess(), effects.status
    assert chain_supply(chain).total == before - FEE
    return effects


def refused(chain: Chain, tx: SignedTransaction, error: ExecutionFailureStatus) -> None:
    """Run a transaction that must fail with `error`: the fee is charged, the system
    state's contents and every other balance are unchanged, nothing is created."""
    system = chain.system_state()
    before = chain_supply(chain)
    effects = chain.run(tx).effects
    assert effects.status == ExecutionFailure(error)
    assert effects.gas_used == FEE
    assert effects.created() == [] and effects.deleted() == []
    assert chain.system_state() == system
    after = chain_supply(chain)
    assert (after.coins, after.stake) == (before.coins - FEE, before.stake)


def join(
    chain: Chain, sender: int | SomaAddress, stake: int, seed: int = 9, coin_index: int = 0
) -> SignedTransaction:
    """`sender` joining with fresh keys from `seed`, staking from one coin and paying
    the fee with another."""
    coins = chain.coins(sender)
    address = chain.addresses[sender] if isinstance(sender, int) else sender
    gas = coins[coin_index + 1]
    return chain.sign(sender, add_validator(address, coins[coin_index], stake, seed), gas)


# --- joining ---------------------------------------------------------------------------


def test_a_join_stakes_from_the_coin_and_waits_for_the_next_epoch(chain: Chain) -> None:
    joiner = chain.addresses[0]
    coin = chain.coins(0)[0]
    tx = join(chain, 0, 2 * MIN_STAKE)
    succeeds(chain, tx)
    kind = tx.data.kind
    assert isinstance(kind, AddValidator)
    vs = chain.system_state().validators
    assert vs.pending_active == (Validator(kind.metadata, 0, 2 * MIN_STAKE),)
    assert vs.find_active(joiner) is None
    assert chain.balance(coin.object_id) == BALANCE - 2 * MIN_STAKE
    assert chain.system_state().committee().size == 4  # not in this epoch's committee


def test_a_join_of_the_minimum_with_a_whole_coin_deletes_the_coin() -> None:
    chain = staked_chain(parameters=dataclasses.replace(PARAMETERS, min_validator_stake=BALANCE))
    coin = chain.coins(0)[0]
    effects = succeeds(chain, join(chain, 0, BALANCE))
    assert effects.deleted() == [coin.object_id]
    assert validator_of(chain, chain.addresses[0]).next_epoch_stake == BALANCE


def test_a_join_may_stake_the_gas_coin_but_not_its_fee(chain: Chain) -> None:
    joiner = chain.addresses[0]
    gas = chain.coins(0)[0]
    too_much = add_validator(joiner, gas, BALANCE - FEE + 1)
    refused(
        chain,
        chain.sign(0, too_much, gas),
        InsufficientCoinBalance(gas.object_id, BALANCE - FEE, BALANCE - FEE + 1),
    )
    gas = chain.ref(gas.object_id)
    effects = succeeds(chain, chain.sign(0, add_validator(joiner, gas, BALANCE - 2 * FEE), gas))
    assert effects.deleted() == []  # the gas coin stays, empty
    assert chain.balance(gas.object_id) == 0


def test_a_join_above_the_coin_balance_is_refused(chain: Chain) -> None:
    coin = chain.coins(0)[0]
    refused(
        chain,
        join(chain, 0, BALANCE + 1),
        InsufficientCoinBalance(coin.object_id, BALANCE, BALANCE + 1),
    )


def test_a_join_below_the_minimum_stake_is_refused(chain: Chain) -> None:
    joiner = chain.addresses[0]
    refused(
        chain,
        join(chain, 0, MIN_STAKE - 1),
        InsufficientStake(
            f"{joiner} stakes {MIN_STAKE - 1}, below the minimum validator stake {MIN_STAKE}"
        ),
    )
    succeeds(chain, join(chain, 0, MIN_STAKE))


def _already(chain: Chain, case: str) -> tuple[SignedTransaction, ExecutionFailureStatus]:
    """A join that repeats an active or pending validator's account or one of its keys."""
    existing = chain.system_state().validators.active[0].metadata
    if case == "active account":
        account = existing.soma_address
        return join(chain, account, MIN_STAKE), ValidatorAlreadyExists(
            f"{account} is already a validator"
        )
    if case == "pending account":
        succeeds(chain, join(chain, 0, MIN_STAKE, seed=30))
        account = chain.addresses[0]
        return join(chain, 0, MIN_STAKE, seed=31, coin_index=2), ValidatorAlreadyExists(
            f"{account} is already a validator"
        )
    joiner = chain.addresses[1]
    fresh, authority = joining_metadata(joiner, 40)
    role = case.removesuffix(" of an active validator").replace(" ", "_")
    if role == "authority_key":
        authority = chain.validator_keys[0].authority
    shared = {role: getattr(existing, role)}
    if role == "network_key":
        shared["tls_certificate"] = existing.tls_certificate
    metadata = dataclasses.replace(fresh, **shared)
    coin, gas = chain.coins(1)[:2]
    kind = AddValidator(metadata, metadata.proof_of_possession(authority), coin, MIN_STAKE)
    return chain.sign(1, kind, gas), ValidatorAlreadyExists(
        f"the {role.replace('_', ' ')} is already registered by {existing.soma_address}"
    )


@pytest.mark.parametrize(
    "case",
    [
        "active account",
        "pending account",
        "authority key of an active validator",
        "protocol key of an active validator",
        "network key of an active validator",
    ],
)
def test_a_join_repeating_an_account_or_key_is_refused(chain: Chain, case: str) -> None:
    tx, error = _already(chain, case)
    refused(chain, tx, error)


def test_a_join_is_refused_above_max_validators_counting_pending_changes() -> None:
    chain = staked_chain(
        stakes=(STAKE,) * 4, parameters=dataclasses.replace(PARAMETERS, max_validators=5)
    )
    succeeds(chain, join(chain, 0, MIN_STAKE, seed=50))  # 4 + 1 pending = 5
    second = chain.addresses[1]
    refused(
        chain,
        join(chain, 1, MIN_STAKE, seed=51),
        InvalidArguments(
            f"the validator set is full: {second} joining would make 6 validators in the "
            "next epoch, above max_validators 5"
        ),
    )
    # A validator leaving frees its place for the next epoch.
    leaver = chain.validator_addresses[0]
    succeeds(chain, chain.sign(leaver, RemoveValidator(), chain.coins(leaver)[0]))
    succeeds(chain, join(chain, 1, MIN_STAKE, seed=51, coin_index=2))
    assert len(chain.system_state().validators.pending_active) == 2


# --- leaving ---------------------------------------------------------------------------


def leave(chain: Chain, address: SomaAddress) -> SignedTransaction:
    return chain.sign(address, RemoveValidator(), chain.coins(address)[0])


def test_leaving_validators_are_kept_sorted_until_the_epoch_ends() -> None:
    chain = staked_chain(stakes=(STAKE,) * 6)
    first, second = sorted(chain.validator_addresses[:2], reverse=True)
    succeeds(chain, leave(chain, first))
    succeeds(chain, leave(chain, second))
    vs = chain.system_state().validators
    assert vs.pending_removals == (second, first)
    assert vs.find_active(first) is not None and vs.find_active(second) is not None
    assert chain.system_state().committee().size == 6


def test_only_a_validator_can_leave(chain: Chain) -> None:
    # The sender is the one leaving: another account (here a user) names no validator.
    user = chain.addresses[0]
    refused(chain, leave(chain, user), ValidatorNotFound(f"{user} is not a validator"))
    assert chain.system_state().validators.pending_removals == ()


def test_a_pending_validator_cannot_leave_before_it_joined(chain: Chain) -> None:
    succeeds(chain, join(chain, 0, MIN_STAKE))
    joiner = chain.addresses[0]
    refused(
        chain,
        chain.sign(0, RemoveValidator(), chain.ref(chain.coins(0)[1].object_id)),
        ValidatorNotFound(f"{joiner} is not an active validator until the next epoch"),
    )


def test_a_validator_leaves_once() -> None:
    chain = staked_chain(stakes=(STAKE,) * 5)
    leaver = chain.validator_addresses[2]
    succeeds(chain, leave(chain, leaver))
    refused(chain, leave(chain, leaver), InvalidArguments(f"{leaver} is already leaving"))


def test_leaving_below_min_validators_is_refused_counting_pending_joins(chain: Chain) -> None:
    first, second = chain.validator_addresses[:2]
    refused(
        chain,
        leave(chain, first),
        InvalidArguments(
            f"{first} cannot leave: 3 validators would remain in the next epoch, below "
            "min_validators 4"
        ),
    )
    succeeds(chain, join(chain, 0, MIN_STAKE))  # 4 active + 1 joining
    succeeds(chain, leave(chain, first))  # 4 remain
    refused(
        chain,
        leave(chain, second),
        InvalidArguments(
            f"{second} cannot leave: 3 validators would remain in the next epoch, below "
            "min_validators 4"
        ),
    )


# --- stake -----------------------------------------------------------------------------


def test_only_a_validators_own_account_adds_stake(chain: Chain) -> None:
    user = chain.addresses[0]
    coin, gas = chain.coins(0)[:2]
    refused(chain, chain.sign(0, AddStake(coin, 10), gas), ValidatorNotFound(f"{user} {NOT_OWN}"))
    validator = chain.validator_addresses[0]
    coin, gas = chain.coins(validator)[:2]
    succeeds(chain, chain.sign(validator, AddStake(coin, 10), gas))
    assert validator_of(chain, validator).next_epoch_stake == STAKE + 10
    assert validator_of(chain, validator).voting_stake == STAKE


def test_a_pending_validator_adds_stake(chain: Chain) -> None:
    succeeds(chain, join(chain, 0, MIN_STAKE))
    joiner = chain.addresses[0]
    coin, gas = chain.coins(0)[2:4]
    succeeds(chain, chain.sign(0, AddStake(coin, 7), gas))
    assert validator_of(chain, joiner).next_epoch_stake == MIN_STAKE + 7


def test_only_a_validators_own_account_withdraws(chain: Chain) -> None:
    user = chain.addresses[0]
    tx = chain.sign(0, WithdrawStake(1), chain.coins(0)[0])
    refused(chain, tx, ValidatorNotFound(f"{user} {NOT_OWN}"))


def test_a_withdrawal_pays_a_coin_at_once_down_to_the_minimum(chain: Chain) -> None:
    validator = chain.validator_addresses[1]
    gas = chain.coins(validator)[0]
    refused(
        chain,
        chain.sign(validator, WithdrawStake(STAKE + 1), gas),
        InsufficientStake(f"{validator} has {STAKE} staked, below the {STAKE + 1} withdrawn"),
    )
    gas = chain.ref(gas.object_id)
    refused(
        chain,
        chain.sign(validator, WithdrawStake(STAKE - MIN_STAKE + 1), gas),
        InsufficientStake(
            f"{validator} would keep {MIN_STAKE - 1} staked, below the minimum validator "
            f"stake {MIN_STAKE}; only a leaving validator may withdraw below it"
        ),
    )
    tx = chain.sign(validator, WithdrawStake(STAKE - MIN_STAKE), chain.ref(gas.object_id))
    effects = succeeds(chain, tx)
    paid = chain.obj(ObjectID.derive(tx.digest(), 0))
    assert [r.object_id for r in effects.created()] == [paid.id]
    assert paid.coin_balance() == STAKE - MIN_STAKE
    assert paid.owner == AddressOwner(validator)
    assert validator_of(chain, validator).next_epoch_stake == MIN_STAKE
    assert validator_of(chain, validator).voting_stake == STAKE  # this epoch's vote stays


def test_a_pending_validator_keeps_the_minimum(chain: Chain) -> None:
    succeeds(chain, join(chain, 0, MIN_STAKE + 5))
    joiner = chain.addresses[0]
    gas = chain.coins(0)[1]
    refused(
        chain,
        chain.sign(0, WithdrawStake(6), gas),
        InsufficientStake(
            f"{joiner} would keep {MIN_STAKE - 1} staked, below the minimum validator "
            f"stake {MIN_STAKE}; only a leaving validator may withdraw below it"
        ),
    )
    succeeds(chain, chain.sign(0, WithdrawStake(5), chain.ref(gas.object_id)))


def test_a_leaving_validator_may_withdraw_everything() -> None:
    chain = staked_chain(stakes=(STAKE,) * 5)
    leaver = chain.validator_addresses[3]
    succeeds(chain, leave(chain, leaver))
    gas = chain.coins(leaver)[1]
    succeeds(chain, chain.sign(leaver, WithdrawStake(STAKE), gas))
    assert validator_of(chain, leaver).next_epoch_stake == 0
    # It leaves at the epoch change with nothing more to be paid back.
    outputs = run_change_epoch(chain, fees=0)
    assert outputs.effects.created() == []
    assert chain.system_state().validators.find(leaver) is None
