"""Transactions on the shared SystemState: join or leave the committee, add or withdraw
stake. Changes to the validator set and to stake take effect at the next epoch boundary
(the epoch change reads `pending_active`, `pending_removals` and `next_epoch_stake`), so
the committee of an epoch never changes while it runs.

Stake is a validator's own, held in the system state: only the validator's account
(`metadata.soma_address`) stakes, adds or withdraws. Every refusal names the account,
the amount and the limit it broke. The rules keep the next epoch's committee buildable:
between `min_validators` and `max_validators` members, each with a positive stake."""

from __future__ import annotations

import dataclasses

from soma.authority.execution.coins import new_coin, spend
from soma.authority.execution.temporary_store import ExecutionError, TemporaryStore
from soma.types.base import ObjectID, SomaAddress
from soma.types.committee import U64_MAX
from soma.types.effects import (
    InsufficientStake,
    InvalidArguments,
    ValidatorAlreadyExists,
    ValidatorNotFound,
)
from soma.types.system_state import (
    SYSTEM_STATE_OBJECT_ID,
    SystemParameters,
    SystemState,
    Validator,
    ValidatorMetadata,
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


def min_stake(parameters: SystemParameters) -> int:
    """The least stake a validator keeps: never 0, whatever the parameters say, since a
    committee member needs a positive stake."""
    return max(1, parameters.min_validator_stake)


# --- joining and leaving ---------------------------------------------------------------


def add_validator(
    store: TemporaryStore, kind: AddValidator, sender: SomaAddress, gas: ObjectID
) -> None:
    state = read_state(store)
    vs = state.validators
    parameters = state.parameters
    _check_new_identity(vs, kind.metadata)
    least = min_stake(parameters)
    if kind.stake < least:
        raise ExecutionError(
            InsufficientStake(
                f"{sender} stakes {kind.stake}, below the minimum validator stake {least}"
            )
        )
    size = vs.next_epoch_size() + 1
    if size > parameters.max_validators:
        raise ExecutionError(
            InvalidArguments(
                f"the validator set is full: {sender} joining would make {size} validators "
                f"in the next epoch, above max_validators {parameters.max_validators}"
            )
        )
    spend(store, kind.coin.object_id, kind.stake, gas)
    joining = Validator(kind.metadata, voting_stake=0, next_epoch_stake=kind.stake)
    validators = dataclasses.replace(vs, pending_active=(*vs.pending_active, joining))
    _check_total_stake(validators)
    write_state(store, _with_validators(state, validators))


def _check_new_identity(vs: ValidatorSet, metadata: ValidatorMetadata) -> None:
    """A joining validator shares no account or key with an active or pending one: the
    committee tells its members apart by each of them."""
    for v in (*vs.active, *vs.pending_active):
        known = v.metadata
        if known.soma_address == metadata.soma_address:
            raise ExecutionError(
                ValidatorAlreadyExists(f"{metadata.soma_address} is already a validator")
            )
        for role in ("authority_key", "protocol_key", "network_key"):
            if getattr(known, role) == getattr(metadata, role):
                raise ExecutionError(
                    ValidatorAlreadyExists(
                        f"the {role.replace('_', ' ')} is already registered by "
                        f"{known.soma_address}"
                    )
                )


def remove_validator(store: TemporaryStore, sender: SomaAddress) -> None:
    state = read_state(store)
    vs = state.validators
    if vs.find_active(sender) is None:
        if vs.find(sender) is not None:
            raise ExecutionError(
                ValidatorNotFound(f"{sender} is not an active validator until the next epoch")
            )
        raise ExecutionError(ValidatorNotFound(f"{sender} is not a validator"))
    if sender in vs.pending_removals:
        raise ExecutionError(InvalidArguments(f"{sender} is already leaving"))
    remaining = vs.next_epoch_size() - 1
    if remaining < state.parameters.min_validators:
        raise ExecutionError(
            InvalidArguments(
                f"{sender} cannot leave: {remaining} validators would remain in the next "
                f"epoch, below min_validators {state.parameters.min_validators}"
            )
        )
    removals = tuple(sorted((*vs.pending_removals, sender)))
    write_state(store, _with_validators(state, dataclasses.replace(vs, pending_removals=removals)))


# --- stake -----------------------------------------------------------------------------


def add_stake(store: TemporaryStore, kind: AddStake, sender: SomaAddress, gas: ObjectID) -> None:
    state = read_state(store)
    validator = _own_validator(state.validators, sender)
    spend(store, kind.coin.object_id, kind.amount, gas)
    stake = validator.next_epoch_stake + kind.amount
    validators = _replace_stake(state.validators, sender, stake)
    _check_total_stake(validators)
    write_state(store, _with_validators(state, validators))


def withdraw_stake(store: TemporaryStore, kind: WithdrawStake, sender: SomaAddress) -> None:
    state = read_state(store)
    vs = state.validators
    staked = _own_validator(vs, sender).next_epoch_stake
    if kind.amount > staked:
        raise ExecutionError(
            InsufficientStake(f"{sender} has {staked} staked, below the {kind.amount} withdrawn")
        )
    rest = staked - kind.amount
    least = min_stake(state.parameters)
    if sender not in vs.pending_removals and rest < least:
        raise ExecutionError(
            InsufficientStake(
                f"{sender} would keep {rest} staked, below the minimum validator stake "
                f"{least}; only a leaving validator may withdraw below it"
            )
        )
    write_state(store, _with_validators(state, _replace_stake(vs, sender, rest)))
    new_coin(store, kind.amount, sender)


def _own_validator(vs: ValidatorSet, sender: SomaAddress) -> Validator:
    validator = vs.find(sender)
    if validator is None:
        raise ExecutionError(
            ValidatorNotFound(
                f"{sender} is not a validator: only a validator's own account can change its stake"
            )
        )
    return validator


def _replace_stake(vs: ValidatorSet, address: SomaAddress, stake: int) -> ValidatorSet:
    """The set with `address`'s next-epoch stake set to `stake` (active or pending)."""

    def change(v: Validator) -> Validator:
        if v.metadata.soma_address != address:
            return v
        return dataclasses.replace(v, next_epoch_stake=stake)

    return dataclasses.replace(
        vs,
        active=tuple(map(change, vs.active)),
        pending_active=tuple(map(change, vs.pending_active)),
    )


def _check_total_stake(vs: ValidatorSet) -> None:
    """Stake stays within what a committee can count (its total is a u64)."""
    total = sum(v.next_epoch_stake for v in (*vs.active, *vs.pending_active))
    if total > U64_MAX:
        raise ExecutionError(InvalidArguments(f"total stake {total} would overflow a u64"))
