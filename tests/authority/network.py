"""A test network: validators in this process, each an AuthorityState fed by its own
ConsensusAuthority over gRPC on loopback, started from one genesis; and clients that
sign transactions and collect effects certificates."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import time
from collections.abc import Sequence

from soma.authority.cache import WritebackCache
from soma.authority.effects_certificate import EffectsCertifier
from soma.authority.epoch_store import AuthorityPerEpochStore
from soma.authority.state import AuthorityState, initialize_genesis, read_system_state
from soma.authority.store import AuthorityStore
from soma.authority.supply import genesis_supply, object_value
from soma.authority.synthetic_commits import SyntheticCommits
from soma.consensus.authority import AuthorityConfig, ConsensusAuthority
from soma.consensus.local_committee import ValidatorKeys, free_ports, generate_committee
from soma.consensus.store import ConsensusStore
from soma.types.base import SomaAddress
from soma.types.committee import Committee
from soma.types.crypto import AccountKeyPair
from soma.types.digests import TransactionDigest
from soma.types.effects import CertifiedTransactionEffects, TransactionEffects
from soma.types.genesis import (
    DEFAULT_PARAMETERS,
    GenesisCoin,
    build_genesis_transaction,
    genesis_coin_id,
    validators_from_committee,
)
from soma.types.object import ObjectRef
from soma.types.system_state import SystemParameters
from soma.types.transaction import SignedTransaction, TransactionData, TransactionKind

#: Liveness bound for the tests' waits (not a performance assertion).
TIMEOUT_S = 60.0
FEE = DEFAULT_PARAMETERS.transaction_fee
GAS_BUDGET = 10 * FEE


@dataclasses.dataclass
class Validator:
    index: int
    keys: ValidatorKeys
    store: AuthorityStore
    consensus_store: ConsensusStore
    epoch_path: str | None
    state: AuthorityState | None = None
    consensus: ConsensusAuthority | None = None
    #: In-memory networks keep one epoch store across restarts (it stands for the disk).
    memory_epoch_store: AuthorityPerEpochStore | None = None

    @property
    def up(self) -> bool:
        return self.state is not None


class TestNetwork:
    """`size` validators; `accounts` funded accounts with `coins_per_account` coins each."""

    __test__ = False

    def __init__(
        self,
        size: int = 4,
        accounts: int = 20,
        coins_per_account: int = 1,
        balance: int = 10**12,
        path: str | os.PathLike[str] | None = None,
        seed: int = 7,
        parameters: SystemParameters = DEFAULT_PARAMETERS,
        state_factory: type[AuthorityState] = AuthorityState,
    ) -> None:
        self.size = size
        #: The AuthorityState class each validator is started with (tests swap it).
        self.state_factory: dict[int, type[AuthorityState]] = {
            i: state_factory for i in range(size)
        }
        self.path = None if path is None else os.fspath(path)
        rng = random.Random(seed)
        self.accounts = [AccountKeyPair(rng.randbytes(32)) for _ in range(accounts)]
        self.addresses = [a.public_key.to_address() for a in self.accounts]
        ports = free_ports(size)
        committee, keys = generate_committee(
            size, seed=seed, consensus_addresses=[f"127.0.0.1:{p}" for p in ports]
        )
        validator_accounts = [AccountKeyPair(rng.randbytes(32)) for _ in range(size)]
        self.validator_accounts = validator_accounts
        coins = [
            GenesisCoin(address, balance)
            for address in self.addresses
            for _ in range(coins_per_account)
        ]
        self.genesis_start_ms = int(time.time() * 1000)
        self.genesis = build_genesis_transaction(
            validators_from_committee(
                committee, [a.public_key.to_address() for a in validator_accounts]
            ),
            coins,
            parameters,
            # Epoch 0 starts now: from the Unix epoch, the first commit would close it.
            epoch_start_timestamp_ms=self.genesis_start_ms,
        )
        self.initial_supply = genesis_supply(self.genesis)
        self.genesis_coin_ids = [genesis_coin_id(i) for i in range(len(coins))]
        #: Where validator i dials validator j instead of j's own consensus address
        #: (`consensus_routes[i][j]`): a test's proxied links.
        self.consensus_routes: dict[int, dict[int, str]] = {}
        self.validators: list[Validator] = []
        for i in range(size):
            self.validators.append(self._open_validator(i, keys[i]))
        self.committee: Committee = read_system_state(self.validators[0].store).committee()
        assert self.committee == committee

    def _open_validator(self, index: int, keys: ValidatorKeys) -> Validator:
        if self.path is None:
            store = AuthorityStore.open_memory()
            consensus_store = ConsensusStore.open_memory()
            epoch_path = None
        else:
            base = os.path.join(self.path, f"validator-{index}")
            os.makedirs(base, exist_ok=True)
            store = AuthorityStore.open_rocksdb(os.path.join(base, "authority"))
            consensus_store = ConsensusStore.open_rocksdb(os.path.join(base, "consensus"))
            epoch_path = os.path.join(base, "epoch-0")
        initialize_genesis(store, self.genesis)
        return Validator(index, keys, store, consensus_store, epoch_path)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        for validator in self.validators:
            await self.start_validator(validator.index)

    async def start_validator(self, index: int) -> None:
        v = self.validators[index]
        system_state = read_system_state(v.store)
        committee = system_state.committee()
        if v.epoch_path is None:
            if v.memory_epoch_store is None:
                v.memory_epoch_store = AuthorityPerEpochStore.open_memory(committee, system_state)
            epoch_store = v.memory_epoch_store
        else:
            epoch_store = AuthorityPerEpochStore.open_rocksdb(v.epoch_path, committee, system_state)
        state = self.state_factory[index](v.keys.authority, v.store, epoch_store)
        consensus = ConsensusAuthority(
            AuthorityConfig(
                committee=committee,
                own_index=index,
                protocol_key=v.keys.protocol,
                network_key=v.keys.network,
                max_backoff_ms=500,
                peer_addresses=self.consensus_routes.get(index, {}),
            ),
            v.consensus_store,
            state.handle_commit,
            last_processed_commit=state.last_consensus_commit(),
            block_listener=state.preparer.add_blocks,
        )
        await state.start(consensus.transaction_client)
        await consensus.start()
        v.state, v.consensus = state, consensus

    async def stop_validator(self, index: int) -> None:
        v = self.validators[index]
        if v.consensus is not None:
            await v.consensus.stop()
        if v.state is not None:
            await v.state.stop()
            if v.epoch_path is not None:
                v.state.epoch_store.close()
        v.state, v.consensus = None, None

    async def crash_validator(self, index: int) -> None:
        """Stop a validator the way a kill would: nothing flushed, stores closed as they
        are, then reopened from disk (RocksDB networks only)."""
        v = self.validators[index]
        assert v.epoch_path is not None and self.path is not None
        assert v.consensus is not None and v.state is not None
        await v.consensus.stop()
        state = v.state
        if state.adapter is not None:
            await state.adapter.close()
        if state._driver is not None:
            state._driver.cancel()
            with contextlib.suppress(BaseException):
                await state._driver
        state.epoch_store.close()
        v.store.close()
        v.consensus_store.close()
        v.state, v.consensus = None, None
        base = os.path.join(self.path, f"validator-{index}")
        v.store = AuthorityStore.open_rocksdb(os.path.join(base, "authority"))
        v.consensus_store = ConsensusStore.open_rocksdb(os.path.join(base, "consensus"))

    async def stop(self) -> None:
        for v in self.validators:
            with contextlib.suppress(Exception):
                await self.stop_validator(v.index)

    def close(self) -> None:
        for v in self.validators:
            v.store.close()
            v.consensus_store.close()

    def live(self) -> list[AuthorityState]:
        return [v.state for v in self.validators if v.state is not None]

    def failures(self) -> list[BaseException]:
        out: list[BaseException] = []
        for v in self.validators:
            if v.state is not None and v.state.failure is not None:
                out.append(v.state.failure)
            if v.consensus is not None and v.consensus.failure is not None:
                out.append(v.consensus.failure)
        return out

    # --- clients -------------------------------------------------------------------------

    def sign(
        self, account: int, kind: TransactionKind, gas: ObjectRef, budget: int = GAS_BUDGET
    ) -> SignedTransaction:
        data = TransactionData(kind, self.addresses[account], gas, budget, None)
        return SignedTransaction.sign(data, self.accounts[account])

    def coin_ref(self, object_id: object, validator: int = 0) -> ObjectRef:
        state = self.validators[validator].state
        assert state is not None
        obj = state.get_object(object_id)  # type: ignore[arg-type]
        assert obj is not None
        return obj.reference()

    async def execute(
        self, tx: SignedTransaction, via: Sequence[int] | None = None
    ) -> CertifiedTransactionEffects:
        """Submit through `via` (default: every live validator) and wait for an effects
        certificate from the live validators."""
        live = [v for v in self.validators if v.state is not None]
        targets = live if via is None else [self.validators[i] for i in via]
        for v in targets:
            assert v.state is not None
            await v.state.submit(tx)
        return await self.certificate(tx.digest())

    async def certificate(self, digest: TransactionDigest) -> CertifiedTransactionEffects:
        certifier = EffectsCertifier(self.committee)
        live = [v.state for v in self.validators if v.state is not None]
        waits = [asyncio.ensure_future(s.wait_for_signed_effects(digest)) for s in live]
        try:
            async with asyncio.timeout(TIMEOUT_S):
                for next_done in asyncio.as_completed(waits):
                    certificate = certifier.add(await next_done)
                    if certificate is not None:
                        return certificate
        finally:
            for w in waits:
                w.cancel()
        raise AssertionError(f"no effects certificate for {digest}")

    async def wait_all_executed(self, digest: TransactionDigest) -> list[TransactionEffects]:
        async with asyncio.timeout(TIMEOUT_S):
            return [await s.wait_for_effects(digest) for s in self.live()]

    async def settle(self) -> None:
        """Wait until every live validator has executed and accumulated the same
        commits (consensus keeps committing, so aim at a commit all have reached)."""
        async with asyncio.timeout(TIMEOUT_S):
            while True:
                states = self.live()
                target = min(s.last_consensus_commit() for s in states)
                if target > 0 and all(s.accumulated_commit >= target for s in states):
                    roots = {s.state_root(target) for s in states}
                    if len(roots) == 1:
                        return
                await asyncio.sleep(0.05)


def balances(state: AuthorityState, addresses: Sequence[SomaAddress]) -> dict[SomaAddress, int]:
    out = {}
    for address in addresses:
        total = 0
        for ref in state.owned_objects(address):
            obj = state.get_object(ref.object_id)
            assert obj is not None
            if obj.is_coin():
                total += obj.coin_balance()
        out[address] = total
    return out


def total_coin_supply(state: AuthorityState) -> int:
    """Coins and validators' stake (the system state's) over every live object."""
    total = 0
    for ref in state.live_refs():
        obj = state.get_object(ref.object_id)
        assert obj is not None
        total += object_value(obj)
    return total


def fees_charged(state: AuthorityState, digests: Sequence[TransactionDigest]) -> int:
    total = 0
    for digest in digests:
        effects = state.get_effects(digest)
        assert effects is not None
        total += effects.gas_used
    return total


def all_fees(state: AuthorityState) -> int:
    """Fees charged by every transaction this validator stored (all flushed)."""
    return sum(e.gas_used for e in state.store.effects.values())


class LocalValidators(TestNetwork):
    """The same genesis and validators, but no consensus: the test orders transactions
    itself and hands every validator the same synthetic commits. Each validator may get
    its own cache bounds, so flushes fall at different places."""

    def __init__(self, cache_bounds: Sequence[tuple[int, int]] = (), **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cache_bounds = list(cache_bounds)
        self.commits = SyntheticCommits()

    async def start_validator(self, index: int) -> None:
        v = self.validators[index]
        system_state = read_system_state(v.store)
        epoch_store = AuthorityPerEpochStore.open_memory(system_state.committee(), system_state)
        cache = None
        if index < len(self.cache_bounds):
            dirty, clean = self.cache_bounds[index]
            cache = WritebackCache(v.store, max_dirty=dirty, max_clean_objects=clean)
        state = AuthorityState(v.keys.authority, v.store, epoch_store, cache)
        await state.start(None)
        v.state = state

    async def order(self, transactions: Sequence[SignedTransaction], per_block: int = 3) -> None:
        """One commit holding `transactions`, to every validator, then wait until all
        executed it."""
        subdag = self.commits.of_transactions(transactions, per_block=per_block)
        for state in self.live():
            await state.handle_commit(subdag)
        async with asyncio.timeout(TIMEOUT_S):
            while not all(s.accumulated_commit >= subdag.index for s in self.live()):
                await asyncio.sleep(0.001)
