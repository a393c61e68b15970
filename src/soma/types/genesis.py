"""Genesis: the first state of a network, as one system transaction creating every
initial object (the system state and the funded coins).

Every validator executes the same genesis transaction, so they all start from the same
objects, versions and state root. The committee of epoch 0 is read from the system state
it creates.
"""

from __future__ import annotations

from collections.abc import Sequence

from soma.types.base import ObjectID, SomaAddress
from soma.types.bcs import BcsStruct, u64
from soma.types.committee import Committee
from soma.types.crypto import Ed25519PublicKey
from soma.types.digests import TransactionDigest
from soma.types.error import InvalidValueError
from soma.types.object import AddressOwner, Object
from soma.types.system_state import (
    SystemParameters,
    SystemState,
    Validator,
    ValidatorMetadata,
    ValidatorSet,
)
from soma.types.transaction import GenesisTransaction, TransactionData

#: Protocol parameters of a new network unless the genesis config says otherwise. The
#: minimum stake is a thousand fees, a tenth of a faucet grant (10,000,000): an account
#: funded once by a local network's faucet can join as a validator.
DEFAULT_PARAMETERS = SystemParameters(
    epoch_duration_ms=24 * 3600 * 1000,
    transaction_fee=1_000,
    min_validator_stake=1_000_000,
    max_validators=150,
    min_validators=4,
)

#: The sender of system transactions (no key can sign for it).
SYSTEM_ADDRESS = SomaAddress.zero()


class GenesisCoin(BcsStruct):
    owner: SomaAddress
    balance: u64


def genesis_coin_id(index: int) -> ObjectID:
    """IDs of the funded coins: derived from a fixed "transaction" so they are the same
    for everyone who builds the same genesis."""
    return ObjectID.derive(TransactionDigest.zero(), index)


def build_genesis_transaction(
    validators: Sequence[Validator],
    coins: Sequence[GenesisCoin],
    parameters: SystemParameters = DEFAULT_PARAMETERS,
    epoch_start_timestamp_ms: int = 0,
    protocol_version: int = 1,
) -> TransactionData:
    """The genesis transaction for these validators (epoch 0) and funded coins."""
    check_parameters(parameters)
    zero = TransactionDigest.zero()
    state = SystemState(
        epoch=0,
        protocol_version=protocol_version,
        validators=ValidatorSet(active=tuple(validators), pending_active=(), pending_removals=()),
        parameters=parameters,
        epoch_start_timestamp_ms=epoch_start_timestamp_ms,
    )
    objects = [state.to_object(1, zero)]
    for i, coin in enumerate(coins):
        objects.append(
            Object.new_coin(genesis_coin_id(i), coin.balance, AddressOwner(coin.owner), zero)
        )
    return TransactionData(
        kind=GenesisTransaction(tuple(objects)),
        sender=SYSTEM_ADDRESS,
        gas_payment=None,
        gas_budget=0,
        expiration=None,
    )


def check_parameters(parameters: SystemParameters) -> None:
    """Refuse parameters under which the epoch change could build no committee: a
    validator with no stake, or an empty or impossible validator set."""
    if parameters.min_validator_stake < 1:
        raise InvalidValueError("min_validator_stake must be at least 1")
    if not 1 <= parameters.min_validators <= parameters.max_validators:
        raise InvalidValueError(
            f"min_validators ({parameters.min_validators}) must be 1 to max_validators "
            f"({parameters.max_validators})"
        )


def validators_from_committee(
    committee: Committee, accounts: Sequence[SomaAddress]
) -> list[Validator]:
    """System-state validators for a generated committee (one account per member, in
    committee order): for local networks and tests."""
    out = []
    for member, account in zip(committee.members, accounts, strict=True):
        metadata = ValidatorMetadata(
            soma_address=account,
            authority_key=Ed25519PublicKey(bytes(member.name)),
            protocol_key=member.protocol_key,
            network_key=member.network_key,
            tls_certificate=member.tls_certificate,
            hostname=member.hostname,
            network_address=member.network_address,
            consensus_address=member.consensus_address,
            p2p_address=member.p2p_address,
        )
        out.append(Validator(metadata, member.stake, member.stake))
    return out
