"""A small chain for unit tests: one genesis in an in-memory AuthorityStore, funded
accounts, and helpers to sign transactions and run them through the executor directly
(no consensus, no event loop)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence

from soma.authority.cache import WritebackCache
from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.execution.executor import execute_transaction
from soma.authority.state import AuthorityState, initialize_genesis, read_system_state
from soma.authority.store import AuthorityStore, TransactionOutputs
from soma.consensus.local_committee import ValidatorKeys, generate_committee
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.digests import TransactionDigest
from soma.types.genesis import (
    DEFAULT_PARAMETERS,
    GenesisCoin,
    build_genesis_transaction,
    validators_from_committee,
)
from soma.types.object import AddressOwner, Object, ObjectRef
from soma.types.system_state import SYSTEM_STATE_OBJECT_ID, SystemParameters, SystemState
from soma.types.transaction import (
    GenesisTransaction,
    SignedTransaction,
    TransactionData,
    TransactionKind,
)

FEE = DEFAULT_PARAMETERS.transaction_fee
BUDGET = 10 * FEE
BALANCE = 1_000_000


class Chain:
    """`accounts` user accounts and `validators` validator accounts (staking `stakes`,
    1 each by default), each with `coins_per_account` coins of `balance` (or of
    `balances`, in order), plus the objects `extra_objects` makes for the user addresses,
    all created by one genesis."""

    def __init__(
        self,
        accounts: int = 3,
        coins_per_account: int = 3,
        balance: int = BALANCE,
        validators: int = 4,
        seed: int = 5,
        parameters: SystemParameters = DEFAULT_PARAMETERS,
        balances: Sequence[int] | None = None,
        extra_objects: Callable[[list[SomaAddress]], Sequence[Object]] | None = None,
        stakes: Sequence[int] | None = None,
    ) -> None:
        rng = random.Random(seed)
        self.committee, self.validator_keys = generate_committee(
            validators, seed=seed, stakes=stakes
        )
        self.accounts = [AccountKeyPair(rng.randbytes(32)) for _ in range(accounts)]
        self.validator_accounts = [AccountKeyPair(rng.randbytes(32)) for _ in range(validators)]
        self.addresses = [a.address for a in self.accounts]
        self.validator_addresses = [a.address for a in self.validator_accounts]
        owners = [*self.addresses, *self.validator_addresses]
        amounts = list(balances) if balances is not None else []
        coins = []
        for owner in owners:
            for _ in range(coins_per_account):
                amount = amounts.pop(0) if amounts else balance
                coins.append(GenesisCoin(owner, amount))
        data = build_genesis_transaction(
            validators_from_committee(self.committee, self.validator_addresses), coins, parameters
        )
        if extra_objects is not None:
            assert isinstance(data.kind, GenesisTransaction)
            extra = tuple(extra_objects(self.addresses))
            data = dataclasses.replace(data, kind=GenesisTransaction((*data.kind.objects, *extra)))
        self.genesis = data
        self.fee = parameters.transaction_fee
        self.store = AuthorityStore.open_memory()
        initialize_genesis(self.store, self.genesis)

    # --- reads ---------------------------------------------------------------------------

    def key_of(self, address: SomaAddress) -> AccountKeyPair:
        for key in (*self.accounts, *self.validator_accounts):
            if key.address == address:
                return key
        raise KeyError(address)

    def refs(self, owner: SomaAddress | int) -> list[ObjectRef]:
        address = self.addresses[owner] if isinstance(owner, int) else owner
        return [ref for _, ref in self.store.owned_refs(address)]

    def coins(self, owner: SomaAddress | int) -> list[ObjectRef]:
        """The owner's coins, by ID."""
        return [r for r in self.refs(owner) if self.obj(r.object_id).is_coin()]

    def obj(self, object_id: ObjectID) -> Object:
        found = self.store.get_live_object(object_id)
        assert found is not None, object_id
        return found

    def ref(self, object_id: ObjectID) -> ObjectRef:
        return self.obj(object_id).reference()

    def balance(self, object_id: ObjectID) -> int:
        return self.obj(object_id).coin_balance()

    def system_state(self) -> SystemState:
        return read_system_state(self.store)

    def system_version(self) -> int:
        return self.obj(SYSTEM_STATE_OBJECT_ID).version

    # --- transactions --------------------------------------------------------------------

    def data(
        self,
        sender: SomaAddress | int,
        kind: TransactionKind,
        gas: ObjectRef,
        budget: int = BUDGET,
        expiration: int | None = None,
    ) -> TransactionData:
        address = self.addresses[sender] if isinstance(sender, int) else sender
        return TransactionData(kind, address, gas, budget, expiration)

    def sign(
        self,
        sender: SomaAddress | int,
        kind: TransactionKind,
        gas: ObjectRef,
        budget: int = BUDGET,
        expiration: int | None = None,
    ) -> SignedTransaction:
        data = self.data(sender, kind, gas, budget, expiration)
        return SignedTransaction.sign(data, self.key_of(data.sender))

    def shared_versions(self, tx: SignedTransaction) -> dict[ObjectID, int]:
        if tx.data.kind.uses_system_state():
            return {SYSTEM_STATE_OBJECT_ID: self.system_version()}
        return {}

    def run(
        self, tx: SignedTransaction, *, write: bool = True, epoch: int = 0
    ) -> TransactionOutputs:
        """Execute against the store's live objects (the system state at its live
        version), and store the outputs unless `write` is False."""
        outputs = execute_transaction(tx, self.shared_versions(tx), self.store, epoch, self.fee)
        if write:
            self.store.write_outputs([outputs], sync=True)
        return outputs

    def authority_state(self, epoch: int | None = None) -> AuthorityState:
        """An AuthorityState over this store (not started), at the genesis epoch or at
        `epoch` (the same system state with its epoch moved)."""
        system = self.system_state()
        if epoch is not None:
            system = dataclasses.replace(system, epoch=epoch)
        committee = system.committee()
        epoch_store = AuthorityPerEpochStore.open_memory(committee, system)
        keys: ValidatorKeys = self.validator_keys[0]
        return AuthorityState(keys.authority, self.store, epoch_store)


def coin_object(object_id: ObjectID, balance: int, owner: SomaAddress, version: int = 1) -> Object:
    return Object.new_coin(
        object_id, balance, AddressOwner(owner), TransactionDigest.zero(), version
    )


def execute_in(cache: WritebackCache, tx: SignedTransaction) -> TransactionOutputs:
    """Execute against the cache's view (the system state at its live version) and
    record the outputs in it, unflushed, whatever their status."""
    shared = {}
    if tx.data.kind.uses_system_state():
        system = cache.get_live_object(SYSTEM_STATE_OBJECT_ID)
        assert system is not None
        shared[SYSTEM_STATE_OBJECT_ID] = system.version
    outputs = execute_transaction(tx, shared, cache, 0, FEE)
    cache.write(outputs)
    return outputs
