"""Transactions on the shared SystemState: join or leave the committee, add or withdraw
stake. Changes to the validator set and to stake take effect at the next epoch boundary
(the epoch change reads `pending_active`, `pending_removals` and `next_epoch_stake`)."""

from __future__ import annotations

import dataclasses

from soma.authority.execution.coins import MAX_BALANCE, coin, new_coin, take
from soma.authority.execution.temporary_store import ExecutionError, TemporaryStore, is_owned_by
from soma.types.base import ObjectID, SomaAddress
from soma.types.effects import (
    InsufficientStake,
    InvalidArguments,
    InvalidObjectType,
    ValidatorAlreadyExists,
    ValidatorNotFound,
)
from soma.types.object import AddressOwner, Object, ObjectType, StakedSomaData
from soma.types.system_state import (
    SYSTEM_STATE_OBJECT_ID,
    SystemState,
    Validator,
    ValidatorSet,
)
from soma.types.transaction import AddStake, AddValidator, WithdrawStake


def read_state(store: TemporaryStore) -> SystemState:
    return SystemState.from_object(store.read(SYSTEM_STATE_OBJECT_ID))


def write_state(store: TemporaryStore, state: SystemState) -> None:
    obj = store.read(SYSTEM_STATE_OBJECT_ID)
    store.write(obj.with_changes(contents=state.to_bytes()))


def _with_validators(state: SystemState, validators: ValidatorSet) -> SystemState:
    return dataclasses.replace(state, validators=validators)


def add_validator(store: TemporaryStore, kind: AddValidator) -> None:
    state = read_state(store)
    vs = state.validators
    metadata = kind.metadata
    known = [*vs.active, *vs.pending_active]
    for v in known:
        if v.metadata.soma_address == metadata.soma_address:
            raise ExecutionError(ValidatorAlreadyExists(f"{metadata.soma_address} is a validator"))
        if v.metadata.authority_key == metadata.authority_key:
            raise ExecutionError(ValidatorAlreadyExists("the authority key is already registered"))
    if len(known) >= state.parameters.max_validators:
        raise ExecutionError(
            InvalidArguments(f"the validator set is full ({state.parameters.max_validators})")
        )
    joining = Validator(metadata, voting_stake=0, next_epoch_stake=0)
    write_state(
        store,
        _with_validators(
            state, dataclasses.replace(vs, pending_active=(*vs.pending_active, joining))
        ),
    )


def remove_validator(store: TemporaryStore, sender: SomaAddress) -> None:
    state = read_state(store)
    vs = state.validators
    if vs.find_active(sender) is None:
        raise ExecutionError(ValidatorNotFound(f"{sender} is not an active validator"))
    if sender in vs.pending_removals:
        raise ExecutionError(InvalidArguments(f"{sender} is already leaving"))
    removals = tuple(sorted((*vs.pending_removals, sender)))
    write_state(store, _with_validators(state, dataclasses.replace(vs, pending_removals=removals)))


def _change_stake(vs: ValidatorSet, address: SomaAddress, delta: int) -> ValidatorSet | None:
    """The set with `delta` added to a validator's next-epoch stake; None if unknown."""

    def changed(validators: tuple[Validator, ...]) -> tuple[tuple[Validator, ...], bool]:
        out, found = [], False
        for v in validators:
            if v.metadata.soma_address == address:
                found = True
                stake = max(0, v.next_epoch_stake + delta)
                if stake > MAX_BALANCE:
                    raise ExecutionError(InvalidArguments("stake overflows"))
                v = dataclasses.replace(v, next_epoch_stake=stake)
            out.append(v)
        return tuple(out), found

    active, in_active = changed(vs.active)
    pending, in_pending = changed(vs.pending_active)
    if not (in_active or in_pending):
        return None
    return dataclasses.replace(vs, active=active, pending_active=pending)


def add_stake(store: TemporaryStore, kind: AddStake, sender: SomaAddress, gas: ObjectID) -> None:
    state = read_state(store)
    coin_id = kind.coin.object_id
    balance = coin(store, coin_id).coin_balance()
    amount = balance if kind.amount is None else kind.amount
    if amount == 0:
        raise ExecutionError(InsufficientStake("nothing to stake"))
    validators = _change_stake(state.validators, kind.validator, amount)
    if validators is None:
        raise ExecutionError(ValidatorNotFound(f"{kind.validator} is not a validator"))
    if kind.amount is None:
        if coin_id == gas:
            raise ExecutionError(
                InvalidArguments("staking the whole gas coin leaves nothing to pay the fee")
            )
        store.delete(coin_id)
    else:
        take(store, coin_id, amount)
    receipt = StakedSomaData(
        validator=kind.validator, stake_activation_epoch=state.epoch + 1, principal=amount
    )
    store.create(
        Object.new_staked_soma(store.new_object_id(), receipt, AddressOwner(sender), store.digest)
    )
    write_state(store, _with_validators(state, validators))


def withdraw_stake(store: TemporaryStore, kind: WithdrawStake, sender: SomaAddress) -> None:
    state = read_state(store)
    object_id = kind.staked_soma.object_id
    obj = store.read(object_id)
    if obj.object_type != ObjectType.STAKED_SOMA or not is_owned_by(obj, sender):
        raise ExecutionError(InvalidObjectType(object_id))
    receipt = obj.staked_soma()
    validators = _change_stake(state.validators, receipt.validator, -receipt.principal)
    if validators is not None:
        write_state(store, _with_validators(state, validators))
    store.delete(object_id)
    new_coin(store, receipt.principal, sender)
