"""The supply: every coin balance, plus every validator's stake (held in the system
state), plus the fees charged in the current epoch and not yet paid out (the epoch
change pays them to the validators). No transaction creates or destroys value, so the
supply of a live state always equals the supply its genesis created: a check for tests,
benchmarks and operators alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from soma.types.effects import TransactionEffects
from soma.types.error import TransactionError
from soma.types.object import Object
from soma.types.system_state import SystemState
from soma.types.transaction import GenesisTransaction, TransactionData


def object_value(obj: Object) -> int:
    """What an object holds of the supply: a coin its balance, the system state the
    next-epoch stake of its active and pending validators, anything else nothing."""
    if obj.is_coin():
        return obj.coin_balance()
    data = obj.data()
    if isinstance(data, SystemState):
        return total_stake(data)
    return 0


def total_stake(state: SystemState) -> int:
    """Every validator's stake; a leaving validator's is counted until the epoch change
    pays it back."""
    vs = state.validators
    return sum(v.next_epoch_stake for v in (*vs.active, *vs.pending_active))


def genesis_supply(genesis: TransactionData) -> int:
    """The supply a genesis transaction creates."""
    kind = genesis.kind
    if not isinstance(kind, GenesisTransaction):
        raise TransactionError(f"{type(kind).__name__} is not a genesis transaction")
    return sum(object_value(obj) for obj in kind.objects)


def unpaid_fees(effects: Iterable[TransactionEffects], epoch: int) -> int:
    """Fees charged in `epoch` (the current one): earlier epochs' fees were paid out by
    their epoch change."""
    return sum(e.gas_used for e in effects if e.executed_epoch == epoch)


@dataclasses.dataclass(frozen=True, slots=True)
class Supply:
    coins: int
    stake: int
    pending_fees: int

    @property
    def total(self) -> int:
        return self.coins + self.stake + self.pending_fees


def live_supply(objects: Iterable[Object], pending_fees: int = 0) -> Supply:
    """The supply of a set of live objects, with the fees charged and not yet paid."""
    coins = stake = 0
    for obj in objects:
        if obj.is_coin():
            coins += obj.coin_balance()
        else:
            stake += object_value(obj)
    return Supply(coins=coins, stake=stake, pending_fees=pending_fees)
