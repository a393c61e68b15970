"""The system state object and the committee derived from it."""

from __future__ import annotations

import dataclasses

import pytest

from soma.types.base import ObjectID
from soma.types.committee import Committee
from soma.types.crypto import NetworkKeyPair, ProtocolKeyPair
from soma.types.error import BcsDecodeError, InvalidValueError
from soma.types.object import AddressOwner, Object, ObjectType, Shared
from soma.types.system_state import (
    SYSTEM_STATE_INITIAL_SHARED_VERSION,
    SYSTEM_STATE_OBJECT_ID,
    SystemParameters,
    SystemState,
    Validator,
    ValidatorMetadata,
    ValidatorSet,
)
from soma.types.tls import tls_identity
from tests.types.conftest import account_key, address, authority_key, seed, tx_digest


def validator(i: int, voting: int, next_epoch: int | None = None) -> Validator:
    meta = ValidatorMetadata(
        soma_address=account_key(i).address,
        authority_key=authority_key(200 + i).public_key,
        protocol_key=ProtocolKeyPair(seed("ss-protocol", i)).public_key,
        network_key=NetworkKeyPair(seed("ss-network", i)).public_key,
        tls_certificate=tls_identity(NetworkKeyPair(seed("ss-network", i))).certificate_der,
        hostname=f"host-{i}",
        network_address=f"10.0.0.{i}:8080",
        consensus_address=f"10.0.0.{i}:8081",
        p2p_address=f"10.0.0.{i}:8084",
    )
    return Validator(meta, voting, voting if next_epoch is None else next_epoch)


def make_state(stakes: list[int], epoch: int = 4) -> SystemState:
    return SystemState(
        epoch=epoch,
        protocol_version=1,
        validators=ValidatorSet(
            active=tuple(validator(i, s) for i, s in enumerate(stakes)),
            pending_active=(validator(50, 7),),
            pending_removals=(account_key(0).address,),
        ),
        parameters=SystemParameters(
            epoch_duration_ms=60_000,
            transaction_fee=10,
            min_validator_stake=1,
            max_validators=100,
            min_validators=1,
        ),
        epoch_start_timestamp_ms=1_700_000_000_000,
    )


def test_system_state_id() -> None:
    assert ObjectID.from_int(5) == SYSTEM_STATE_OBJECT_ID
    assert SYSTEM_STATE_OBJECT_ID.to_hex() == "0x" + "00" * 31 + "05"


def test_committee_from_active_validators() -> None:
    stakes = [30, 10, 40, 20, 5]
    state = make_state(stakes)
    committee = state.committee()
    assert isinstance(committee, Committee)
    assert committee.epoch == 4
    assert committee.size == len(stakes)
    names = committee.names()
    assert names == sorted(names)
    by_name = {v.metadata.authority_name: v for v in state.validators.active}
    assert set(names) == set(by_name)
    for m in committee.members:
        v = by_name[m.name]
        assert m.stake == v.voting_stake
        assert m.protocol_key == v.metadata.protocol_key
        assert m.network_key == v.metadata.network_key
        assert m.hostname == v.metadata.hostname
        assert m.network_address == v.metadata.network_address
        assert m.consensus_address == v.metadata.consensus_address
        assert m.p2p_address == v.metadata.p2p_address
    assert committee.total_stake == sum(stakes)
    # Pending validators are not in this epoch's committee.
    pending = state.validators.pending_active[0].metadata.authority_name
    assert not committee.is_member(pending)


def test_committee_uses_voting_stake_not_next_epoch_stake() -> None:
    state = make_state([10, 20])
    active = tuple(
        dataclasses.replace(v, next_epoch_stake=v.voting_stake * 100)
        for v in state.validators.active
    )
    state = dataclasses.replace(
        state, validators=dataclasses.replace(state.validators, active=active)
    )
    assert state.committee().total_stake == 30


def test_committee_does_not_depend_on_validator_order() -> None:
    state = make_state([1, 2, 3, 4])
    reversed_state = dataclasses.replace(
        state,
        validators=dataclasses.replace(
            state.validators, active=tuple(reversed(state.validators.active))
        ),
    )
    assert reversed_state.committee() == state.committee()


def test_find_active() -> None:
    state = make_state([1, 2, 3])
    v = state.validators.find_active(account_key(1).address)
    assert v is not None
    assert v.voting_stake == 2
    assert state.validators.find_active(address(99)) is None


def test_to_object_and_back() -> None:
    state = make_state([1, 2, 3])
    obj = state.to_object(7, tx_digest(3))
    assert obj.id == SYSTEM_STATE_OBJECT_ID
    assert obj.object_type is ObjectType.SYSTEM_STATE
    assert obj.version == 7
    assert obj.owner == Shared(SYSTEM_STATE_INITIAL_SHARED_VERSION)
    assert obj.previous_transaction == tx_digest(3)
    assert obj.contents == state.to_bytes()
    assert SystemState.from_object(obj) == state
    decoded_obj = Object.from_bytes(obj.to_bytes())
    assert SystemState.from_object(decoded_obj) == state
    assert SystemState.from_object(decoded_obj).committee() == state.committee()


def test_from_object_of_a_coin_raises() -> None:
    coin = Object.new_coin(ObjectID.from_int(9), 5, AddressOwner(address(0)), tx_digest(0))
    with pytest.raises(InvalidValueError):
        SystemState.from_object(coin)
    # A coin at the system state's ID is not the system state either.
    with pytest.raises(InvalidValueError):
        SystemState.from_object(coin.with_changes(id=SYSTEM_STATE_OBJECT_ID))


def test_from_object_of_system_state_type_at_another_id_raises() -> None:
    obj = make_state([1]).to_object(2, tx_digest(0)).with_changes(id=ObjectID.from_int(6))
    with pytest.raises(InvalidValueError):
        SystemState.from_object(obj)


def test_from_object_with_corrupt_contents_raises() -> None:
    obj = make_state([1]).to_object(2, tx_digest(0))
    with pytest.raises(BcsDecodeError):
        SystemState.from_object(obj.with_changes(contents=obj.contents + b"\x00"))
    with pytest.raises(BcsDecodeError):
        SystemState.from_object(obj.with_changes(contents=obj.contents[:-1]))
