"""The epoch change: the last transaction of an epoch, a function of the system state,
the `ChangeEpoch` arguments and the fees the epoch charged, nothing else, so every
validator (and every node replaying the chain) computes the same next epoch.

In this order:

1. the epoch's fees go to the validators that served it (`active` as it stands, leavers
   included), in proportion to their voting stake: validator i gets
   `fees * stake_i // total_stake`, and what the rounding leaves over goes to the one
   with the most stake (ties: the lowest account address). Each nonzero payment is a new
   coin owned by the validator's account;
2. the validators in `pending_removals` leave, each paid its whole next-epoch stake back
   as a new coin (if nonzero);
3. the next committee is the remaining active validators, in their order, followed by
   the pending ones, in the order they joined; each votes with its next-epoch stake.
   `pending_active` and `pending_removals` are emptied;
4. the epoch, protocol version and epoch start become the transaction's.

Coins and stake after = coins and stake before + the fees: the supply is conserved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from soma.authority.execution.coins import MAX_BALANCE, new_coin
from soma.authority.execution.temporary_store import TemporaryStore
from soma.authority.execution.validators import read_state, write_state
from soma.types.error import CommitteeError, SomaError
from soma.types.system_state import SystemState, Validator, ValidatorSet
from soma.types.transaction import ChangeEpoch


class EpochChangeError(SomaError):
    """A `ChangeEpoch` that cannot apply to the system state (not the next epoch, fees
    out of range, or a next committee that cannot be built). The validators made it, so
    it is a bug, never a user's fault: execution stops."""

    code = "EPOCH_CHANGE"


def advance_epoch(store: TemporaryStore, kind: ChangeEpoch, epoch_fees: int) -> None:
    """Apply the epoch change to the system state in `store`, creating the coins it pays."""
    state = read_state(store)
    if kind.epoch != state.epoch + 1:
        raise EpochChangeError(
            f"ChangeEpoch to epoch {kind.epoch}, but the system state is at epoch {state.epoch}"
        )
    if not 0 <= epoch_fees <= MAX_BALANCE:
        raise EpochChangeError(f"epoch fees {epoch_fees} are outside 0 to {MAX_BALANCE}")
    vs = state.validators
    for validator, share in zip(vs.active, fee_shares(vs.active, epoch_fees), strict=True):
        _pay(store, validator, share)
    leaving = set(vs.pending_removals)
    for validator in vs.active:
        if validator.metadata.soma_address in leaving:
            _pay(store, validator, validator.next_epoch_stake)
    next_state = _next_state(state, kind)
    # The rules of the validator transactions keep this buildable; if they ever failed,
    # stop here rather than store a system state no node can read a committee from.
    try:
        next_state.committee()
    except CommitteeError as e:
        raise EpochChangeError(f"the next committee cannot be built: {e.message}") from e
    write_state(store, next_state)


def fee_shares(validators: Sequence[Validator], fees: int) -> list[int]:
    """Each validator's part of `fees`, by voting stake; they add up to `fees` exactly."""
    if fees == 0:
        return [0] * len(validators)
    total = sum(v.voting_stake for v in validators)
    if total == 0:
        raise EpochChangeError(f"{fees} in fees but no validator has a voting stake")
    shares = [fees * v.voting_stake // total for v in validators]
    top = min(
        range(len(validators)),
        key=lambda i: (-validators[i].voting_stake, validators[i].metadata.soma_address),
    )
    shares[top] += fees - sum(shares)
    return shares


def _pay(store: TemporaryStore, validator: Validator, amount: int) -> None:
    if amount > 0:
        new_coin(store, amount, validator.metadata.soma_address)


def _next_state(state: SystemState, kind: ChangeEpoch) -> SystemState:
    vs = state.validators
    leaving = set(vs.pending_removals)
    staying = [v for v in vs.active if v.metadata.soma_address not in leaving]
    active = tuple(
        dataclasses.replace(v, voting_stake=v.next_epoch_stake)
        for v in (*staying, *vs.pending_active)
    )
    return dataclasses.replace(
        state,
        epoch=kind.epoch,
        protocol_version=kind.protocol_version,
        epoch_start_timestamp_ms=kind.epoch_start_timestamp_ms,
        validators=ValidatorSet(active=active, pending_active=(), pending_removals=()),
    )
