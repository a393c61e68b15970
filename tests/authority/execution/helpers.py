"""Chains with real stakes for the validator transactions and the epoch change: a
minimum stake the genesis validators hold several times over, and joining validators
with fresh keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from soma.authority.execution.executor import execute_transaction
from soma.authority.store import TransactionOutputs
from soma.authority.supply import Supply, live_supply, unpaid_fees
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AuthorityKeyPair, NetworkKeyPair, ProtocolKeyPair
from soma.types.digests import TransactionDigest
from soma.types.effects import TransactionEffects
from soma.types.genesis import DEFAULT_PARAMETERS, SYSTEM_ADDRESS
from soma.types.object import GENESIS_VERSION, AddressOwner, Object, ObjectRef, ObjectType
from soma.types.system_state import (
    SystemParameters,
    SystemState,
    Validator,
    ValidatorMetadata,
    ValidatorSet,
)
from soma.types.tls import tls_identity
from soma.types.transaction import AddValidator, ChangeEpoch, SignedTransaction, TransactionData
from tests.authority.helpers import Chain

MIN_STAKE = 10_000
STAKE = 50_000
PARAMETERS = dataclasses.replace(DEFAULT_PARAMETERS, min_validator_stake=MIN_STAKE)


def staked_chain(
    stakes: Sequence[int] = (STAKE,) * 4,
    parameters: SystemParameters = PARAMETERS,
    accounts: int = 3,
    coins_per_account: int = 4,
) -> Chain:
    """A chain whose validators stake `stakes` (in committee order) under `parameters`."""
    return Chain(
        accounts=accounts,
        coins_per_account=coins_per_account,
        validators=len(stakes),
        stakes=stakes,
        parameters=parameters,
    )


def joining_metadata(sender: SomaAddress, seed: int) -> tuple[ValidatorMetadata, AuthorityKeyPair]:
    """Metadata with keys derived from `seed` (unlike any genesis validator's)."""
    authority = AuthorityKeyPair(bytes([seed % 256, 1]) * 16)
    network = NetworkKeyPair(bytes([seed % 256, 3]) * 16)
    metadata = ValidatorMetadata(
        soma_address=sender,
        authority_key=authority.public_key,
        protocol_key=ProtocolKeyPair(bytes([seed % 256, 2]) * 16).public_key,
        network_key=network.public_key,
        tls_certificate=tls_identity(network).certificate_der,
        hostname=f"joiner-{seed}",
        network_address=f"joiner-{seed}:1",
        consensus_address=f"joiner-{seed}:2",
        p2p_address=f"joiner-{seed}:3",
    )
    return metadata, authority


def add_validator(sender: SomaAddress, coin: ObjectRef, stake: int, seed: int = 9) -> AddValidator:
    """`sender` joining with fresh keys, staking `stake` from `coin`."""
    metadata, authority = joining_metadata(sender, seed)
    return AddValidator(metadata, metadata.proof_of_possession(authority), coin, stake)


def not_a_coin(object_id: ObjectID, owner: SomaAddress) -> Object:
    """An address-owned object that is not a coin (a system-state value at another ID,
    which nothing reads as the system state): what coin operations and gas refuse, now
    that stake receipts are gone."""
    state = SystemState(0, 1, ValidatorSet((), (), ()), DEFAULT_PARAMETERS, 0)
    return Object(
        object_id,
        ObjectType.SYSTEM_STATE,
        GENESIS_VERSION,
        state.to_bytes(),
        AddressOwner(owner),
        TransactionDigest.zero(),
    )


def chain_supply(chain: Chain) -> Supply:
    """Coins and stake over every live object of the chain (fees are not counted)."""
    return live_supply(chain.obj(ref.object_id) for ref in chain.store.live_refs())


def change_epoch_tx(
    epoch: int, start_ms: int = 1_000, protocol_version: int = 1
) -> SignedTransaction:
    """The epoch change as validators make it: from the system address, unsigned."""
    kind = ChangeEpoch(epoch, protocol_version, start_ms)
    return SignedTransaction(TransactionData(kind, SYSTEM_ADDRESS, None, 0, None), ())


def run_change_epoch(
    chain: Chain,
    *,
    epoch: int | None = None,
    fees: int | None = None,
    start_ms: int = 1_000,
    protocol_version: int = 1,
    write: bool = True,
) -> TransactionOutputs:
    """Execute the epoch change to the next epoch (or `epoch`), paying `fees` (by
    default, every fee charged in the current epoch), at the system state's live
    version, and store its outputs unless `write` is False."""
    state = chain.system_state()
    target = state.epoch + 1 if epoch is None else epoch
    paid = epoch_fees(chain) if fees is None else fees
    tx = change_epoch_tx(target, start_ms, protocol_version)
    outputs = execute_transaction(
        tx, chain.shared_versions(tx), chain.store, state.epoch, chain.fee, epoch_fees=paid
    )
    if write:
        chain.store.write_outputs([outputs], sync=True)
    return outputs


def epoch_fees(chain: Chain) -> int:
    """Fees charged in the chain's current epoch (what its epoch change pays out)."""
    return unpaid_fees(chain.store.effects.values(), chain.system_state().epoch)


def run_now(chain: Chain, tx: SignedTransaction) -> TransactionEffects:
    """Execute and store a user transaction in the chain's current epoch."""
    return chain.run(tx, epoch=chain.system_state().epoch).effects


def validator_of(chain: Chain, address: SomaAddress) -> Validator:
    vs = chain.system_state().validators
    found = vs.find(address)
    assert found is not None, address
    return found
