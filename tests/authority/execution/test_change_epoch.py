"""The epoch change executed: the fees paid by voting stake (the remainder to the largest
stake, ties to the lowest address), leavers paid their stake back, joiners voting with
theirs, the epoch, protocol and start moved on, the supply conserved exactly, and the
same bytes on every store."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma.authority.execution.epoch_change import EpochChangeError, advance_epoch, fee_shares
from soma.authority.execution.executor import SharedVersionMismatchError, execute_transaction
from soma.authority.execution.temporary_store import TemporaryStore
from soma.authority.supply import genesis_supply
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import TransactionDigest
from soma.types.effects import ExecutionSuccess, IDOperation
from soma.types.object import AddressOwner
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, Validator, ValidatorSet
from soma.types.transaction import (
    AddStake,
    AddValidator,
    ChangeEpoch,
    RemoveValidator,
    WithdrawStake,
)
from tests.authority.execution.helpers import (
    MIN_STAKE,
    STAKE,
    add_validator,
    chain_supply,
    change_epoch_tx,
    epoch_fees,
    run_change_epoch,
    run_now,
    staked_chain,
    validator_of,
)
from tests.authority.helpers import FEE, Chain

STAKES = (STAKE, STAKE + 1_000, STAKE + 2_000, STAKE + 3_000, STAKE + 4_000)


def busy_chain() -> tuple[Chain, SomaAddress, SomaAddress, AddValidator]:
    """Five validators of distinct stakes, and an epoch in which a user joins, validator
    1 leaves, validator 2 adds 500 and validator 3 withdraws 700. Returns the chain, the
    joiner, the leaver and the join."""
    chain = staked_chain(stakes=STAKES)
    joiner = chain.addresses[0]
    coin, gas = chain.coins(0)[:2]
    join = add_validator(joiner, coin, 2 * MIN_STAKE)
    v = chain.validator_addresses
    for tx in [
        chain.sign(0, join, gas),
        chain.sign(v[1], RemoveValidator(), chain.coins(v[1])[0]),
        chain.sign(v[2], AddStake(chain.coins(v[2])[0], 500), chain.coins(v[2])[1]),
        chain.sign(v[3], WithdrawStake(700), chain.coins(v[3])[0]),
    ]:
        assert run_now(chain, tx).status == ExecutionSuccess()
    return chain, joiner, v[1], join


def coins_created(
    chain: Chain, digest: TransactionDigest, count: int
) -> list[tuple[SomaAddress, int]]:
    """(owner, balance) of the first `count` coins a transaction created, in order."""
    out = []
    for i in range(count):
        coin = chain.obj(ObjectID.derive(digest, i))
        assert isinstance(coin.owner, AddressOwner)
        out.append((coin.owner.address, coin.coin_balance()))
    return out


# --- the validator set -----------------------------------------------------------------


def test_joiners_vote_with_their_stake_and_leavers_go() -> None:
    chain, joiner, leaver, join = busy_chain()
    before = chain.system_state().validators
    expected_next = {
        v.metadata.soma_address: v.next_epoch_stake
        for v in (*before.active, *before.pending_active)
    }
    run_change_epoch(chain)
    state = chain.system_state()
    vs = state.validators
    staying = [v.metadata.soma_address for v in before.active if v.metadata.soma_address != leaver]
    assert [v.metadata.soma_address for v in vs.active] == [*staying, joiner]
    assert vs.pending_active == () and vs.pending_removals == ()
    for v in vs.active:
        assert v.voting_stake == v.next_epoch_stake == expected_next[v.metadata.soma_address]
    assert validator_of(chain, joiner) == Validator(join.metadata, 2 * MIN_STAKE, 2 * MIN_STAKE)
    committee = state.committee()
    assert committee.epoch == 1 and committee.size == 5
    assert committee.is_member(join.metadata.authority_name)
    assert committee.total_stake == sum(v.voting_stake for v in vs.active)


def test_stake_changes_take_effect_as_voting_stake() -> None:
    chain, _, _, _ = busy_chain()
    v = chain.validator_addresses
    before = {a: validator_of(chain, a) for a in (v[2], v[3])}
    assert before[v[2]].next_epoch_stake == before[v[2]].voting_stake + 500
    assert before[v[3]].next_epoch_stake == before[v[3]].voting_stake - 700
    run_change_epoch(chain)
    for address, old in before.items():
        assert validator_of(chain, address).voting_stake == old.next_epoch_stake


def test_a_leaver_is_paid_its_fee_share_and_then_its_stake() -> None:
    chain, _, leaver, _ = busy_chain()
    active = chain.system_state().validators.active
    fees = epoch_fees(chain)
    assert fees == 4 * FEE
    shares = fee_shares(active, fees)
    stake_back = validator_of(chain, leaver).next_epoch_stake
    outputs = run_change_epoch(chain)
    paid = coins_created(chain, outputs.effects.transaction_digest, len(active) + 1)
    expected = [(v.metadata.soma_address, s) for v, s in zip(active, shares, strict=True)]
    assert paid == [*expected, (leaver, stake_back)]
    assert len(outputs.effects.created()) == len(active) + 1
    assert chain.system_state().validators.find(leaver) is None


# --- the fees --------------------------------------------------------------------------


def test_fees_are_split_by_voting_stake_and_the_remainder_goes_to_the_largest() -> None:
    chain = staked_chain(stakes=(3 * MIN_STAKE, 3 * MIN_STAKE, 2 * MIN_STAKE, MIN_STAKE))
    active = chain.system_state().validators.active
    outputs = run_change_epoch(chain, fees=1001)
    # 1001 * 3/9 = 333.67, 333.67, 222.4, 111.2: 999 paid, the 2 left to the first of the
    # two largest by address.
    ties = sorted(v.metadata.soma_address for v in active if v.voting_stake == 3 * MIN_STAKE)
    expected = {
        v.metadata.soma_address: {3: 333, 2: 222, 1: 111}[v.voting_stake // MIN_STAKE]
        for v in active
    }
    expected[ties[0]] += 2
    paid = coins_created(chain, outputs.effects.transaction_digest, 4)
    assert paid == [(v.metadata.soma_address, expected[v.metadata.soma_address]) for v in active]
    assert sum(b for _, b in paid) == 1001


def test_a_zero_share_makes_no_coin_and_no_fees_make_none() -> None:
    chain = staked_chain(stakes=(1_000 * MIN_STAKE, MIN_STAKE, MIN_STAKE, MIN_STAKE))
    outputs = run_change_epoch(chain, fees=500)
    created = [chain.obj(r.object_id) for r in outputs.effects.created()]
    assert [c.coin_balance() for c in created] == [500]  # 500 * 1/1003 rounds to 0
    other = staked_chain()
    assert run_change_epoch(other, fees=0).effects.created() == []


@given(
    stakes=st.lists(st.integers(1, 10**12), min_size=1, max_size=12),
    fees=st.integers(0, 2**64 - 1),
)
def test_fee_shares_add_up_and_round_down_but_for_the_largest(stakes: list[int], fees: int) -> None:
    base = staked_chain(stakes=(STAKE,)).system_state().validators.active[0]
    validators = [
        dataclasses.replace(
            base,
            metadata=dataclasses.replace(base.metadata, soma_address=SomaAddress.from_int(i)),
            voting_stake=s,
        )
        for i, s in enumerate(stakes)
    ]
    shares = fee_shares(validators, fees)
    assert sum(shares) == fees
    total = sum(stakes)
    top = min(range(len(stakes)), key=lambda i: (-stakes[i], i))
    for i, (stake, share) in enumerate(zip(stakes, shares, strict=True)):
        floor = fees * stake // total
        assert share == floor if i != top else share >= floor


# --- supply, epochs, bytes -------------------------------------------------------------


def test_the_supply_is_conserved_exactly() -> None:
    chain, _, _, _ = busy_chain()
    before = chain_supply(chain)
    fees = epoch_fees(chain)
    assert before.total + fees == genesis_supply(chain.genesis)
    run_change_epoch(chain)
    after = chain_supply(chain)
    assert after.total == before.total + fees == genesis_supply(chain.genesis)
    assert epoch_fees(chain) == 0  # a new epoch: nothing charged yet
    # And again over a second epoch, whose transactions run in epoch 1.
    user = chain.addresses[1]
    coin, gas = chain.coins(user)[:2]
    run_now(chain, chain.sign(1, AddStake(coin, 5), gas))  # not a validator: fails, charged
    assert epoch_fees(chain) == FEE
    run_change_epoch(chain)
    assert chain_supply(chain).total == genesis_supply(chain.genesis)


def test_epoch_start_and_protocol_version_advance() -> None:
    chain = staked_chain()
    parameters = chain.system_state().parameters
    run_change_epoch(chain, start_ms=86_400_000, protocol_version=2)
    state = chain.system_state()
    assert (state.epoch, state.epoch_start_timestamp_ms, state.protocol_version) == (
        1,
        86_400_000,
        2,
    )
    assert state.parameters == parameters
    run_change_epoch(chain, start_ms=2 * 86_400_000)
    state = chain.system_state()
    assert (state.epoch, state.epoch_start_timestamp_ms, state.protocol_version) == (
        2,
        2 * 86_400_000,
        1,
    )


@pytest.mark.parametrize("epoch", [0, 2, 7])
def test_a_change_to_any_epoch_but_the_next_is_an_error(epoch: int) -> None:
    chain = staked_chain()
    before = chain.obj(SYSTEM_STATE_OBJECT_ID)
    with pytest.raises(EpochChangeError, match=f"epoch {epoch}, but .* at epoch 0"):
        run_change_epoch(chain, epoch=epoch)
    assert chain.obj(SYSTEM_STATE_OBJECT_ID) == before


@pytest.mark.parametrize("fees", [-1, 2**64])
def test_fees_outside_a_u64_are_an_error(fees: int) -> None:
    with pytest.raises(EpochChangeError, match="epoch fees"):
        run_change_epoch(staked_chain(), fees=fees)


def test_the_effects_of_the_epoch_change() -> None:
    chain = busy_chain()[0]
    version = chain.system_version()
    outputs = run_change_epoch(chain)
    effects = outputs.effects
    digest = change_epoch_tx(1).digest()
    assert effects.transaction_digest == digest
    assert effects.status == ExecutionSuccess()
    assert effects.executed_epoch == 0  # executed, and signed, in the epoch it ends
    assert effects.gas_used == 0 and effects.gas_object_index is None
    assert effects.lamport_version == version + 1
    changes = {c.object_id: c.change.id_operation for c in effects.changed_objects}
    assert changes.pop(SYSTEM_STATE_OBJECT_ID) is IDOperation.NONE
    assert set(changes.values()) == {IDOperation.CREATED}
    assert sorted(changes) == sorted(ObjectID.derive(digest, i) for i in range(len(changes)))
    for obj in outputs.written:
        assert obj.version == version + 1
        assert obj.previous_transaction == digest
    assert chain.system_version() == version + 1


def test_a_system_state_at_another_version_stops_execution() -> None:
    chain = staked_chain()
    tx = change_epoch_tx(1)
    with pytest.raises(SharedVersionMismatchError):
        execute_transaction(tx, {SYSTEM_STATE_OBJECT_ID: 7}, chain.store, 0, FEE, epoch_fees=0)


def test_two_stores_produce_the_same_bytes() -> None:
    (one, _, _, _), (two, _, _, _) = busy_chain(), busy_chain()
    assert one.genesis.digest() == two.genesis.digest()
    first, second = run_change_epoch(one), run_change_epoch(two)
    assert first.effects.to_bytes() == second.effects.to_bytes()
    assert [o.to_bytes() for o in first.written] == [o.to_bytes() for o in second.written]
    assert first.owner_inserts == second.owner_inserts
    assert list(one.store.live_refs()) == list(two.store.live_refs())
    again = run_change_epoch(one, epoch=2)
    assert again.effects.to_bytes() == run_change_epoch(two, epoch=2).effects.to_bytes()


def test_the_joined_validator_acts_as_an_active_one_after_the_change() -> None:
    chain, joiner, _, _ = busy_chain()
    run_change_epoch(chain)
    # Five active after the change (min 4): the new member can leave in turn.
    gas = chain.coins(joiner)[0]
    effects = run_now(chain, chain.sign(joiner, RemoveValidator(), gas))
    assert effects.status == ExecutionSuccess()
    assert effects.executed_epoch == 1
    assert chain.system_state().validators.pending_removals == (joiner,)


def test_a_next_committee_that_cannot_be_built_stops_the_change() -> None:
    # The validator transactions never allow it; the epoch change refuses it anyway
    # rather than store a system state no node can read a committee from.
    chain = staked_chain()
    state = chain.system_state()
    zero = dataclasses.replace(
        state.validators.active[0],
        metadata=dataclasses.replace(
            state.validators.active[0].metadata, soma_address=SomaAddress.from_int(77)
        ),
        voting_stake=0,
        next_epoch_stake=0,
    )
    broken = dataclasses.replace(
        state, validators=ValidatorSet(state.validators.active, (zero,), ())
    )
    tx = change_epoch_tx(1)
    assert isinstance(tx.data.kind, ChangeEpoch)
    objects = {SYSTEM_STATE_OBJECT_ID: broken.to_object(1, tx.digest())}
    store = TemporaryStore(tx.digest(), 2, objects)
    with pytest.raises(EpochChangeError, match="next committee cannot be built"):
        advance_epoch(store, tx.data.kind, 0)
